"""`bflow completion bash|zsh|fish`: a script that completes bflow's commands, options, task
names and foreach instances. The scripts ask `bflow completion --names` for the names each
time, which loads the project through the project cache, so they stay current without
re-sourcing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from buildflow.errors import EXIT_OK

if TYPE_CHECKING:
    from buildflow.flowfile import Flowfile
    from buildflow.model import Task

_BASH = r'''# bflow completion for bash: source it, e.g. from ~/.bashrc:
#   source <(bflow completion bash)
# The names are matched as text, one per line, and offered quoted: never as `compgen -W`
# words, which the shell expands (a file named `$(cmd).c` would run cmd at TAB).
_bflow_word() {  # the word the cursor ends, as the shell will read it: escapes and quotes
    local line=$1 c i           # taken out (`my\ f`, `'my f`); the quote still open, if any
    _bflow_cur= _bflow_quote=
    for ((i = 0; i < ${#line}; i++)); do
        c=${line:i:1}
        if [[ -n $_bflow_quote ]]; then
            if [[ $c == "$_bflow_quote" ]]; then _bflow_quote=
            elif [[ $c == \\ && $_bflow_quote == \" ]]; then ((i++)); _bflow_cur+=${line:i:1}
            else _bflow_cur+=$c; fi
        elif [[ $c == \\ ]]; then ((i++)); _bflow_cur+=${line:i:1}
        elif [[ $c == [\"\'] ]]; then _bflow_quote=$c
        elif [[ $c == [[:space:]] ]]; then _bflow_cur=
        else _bflow_cur+=$c; fi
    done
}
_bflow() {
    local _bflow_cur _bflow_quote
    _bflow_word "${COMP_LINE:0:COMP_POINT}"
    local cur=$_bflow_cur
    local prev=${COMP_WORDS[COMP_CWORD-1]}
    case $prev in
        -f|--file|-o|--output) mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return;;
        -C|--directory) mapfile -t COMPREPLY < <(compgen -d -- "$cur"); return;;
        --format) mapfile -t COMPREPLY < <(compgen -W "@FORMATS@" -- "$cur"); return;;
        completion) mapfile -t COMPREPLY < <(compgen -W "bash zsh fish" -- "$cur"); return;;
        cache) mapfile -t COMPREPLY < <(compgen -W "stats clear" -- "$cur"); return;;
    esac
    local -a found=()
    local name
    if [[ $cur == -* ]]; then
        for name in @OPTIONS@; do [[ $name == "$cur"* ]] && found+=("$name"); done
    else
        for name in @COMMANDS@; do [[ $name == "$cur"* ]] && found+=("$name"); done
        while IFS= read -r name; do
            [[ $name == "$cur"* ]] && found+=("$name")
        done < <(bflow completion --names 2>/dev/null)
    fi
    # bash splits words at ':' and '=', so an instance (compile:src/a.c) is completed after
    # the last of them
    local breaks=${COMP_WORDBREAKS//[^:=]/} head=
    if [[ -n $breaks && $cur == *["$breaks"]* ]]; then
        head=${cur%"${cur##*["$breaks"]}"}
    fi
    if [[ -n $_bflow_quote ]]; then  # inside an open quote, the word is all of it, as it is
        COMPREPLY=("${found[@]}")
        return
    fi
    COMPREPLY=()
    for name in "${found[@]}"; do
        printf -v name '%q' "${name#"$head"}"
        COMPREPLY+=("$name")
    done
}
complete -o default -F _bflow bflow
'''

_ZSH = r'''#compdef bflow
# bflow completion for zsh: source it after compinit, e.g. from ~/.zshrc:
#   source <(bflow completion zsh)
_bflow() {
    if [[ ${words[CURRENT-1]} == --format ]]; then
        compadd -- @FORMATS@
    elif [[ $PREFIX == -* ]]; then
        compadd -- @OPTIONS@
    else
        local -a names
        names=(${(f)"$(bflow completion --names 2>/dev/null)"})
        compadd -- @COMMANDS@ $names
        _files
    fi
}
compdef _bflow bflow
'''

_FISH = r'''# bflow completion for fish: save it as ~/.config/fish/completions/bflow.fish, or
#   bflow completion fish | source
complete -c bflow -f
complete -c bflow -n __fish_use_subcommand -a '@COMMANDS@'
complete -c bflow -a '(bflow completion --names 2>/dev/null)'
complete -c bflow -s f -l file -r -F
complete -c bflow -s C -l directory -r -a '(__fish_complete_directories)'
complete -c bflow -l format -x -a '@FORMATS@'
@FISH_OPTIONS@
'''

SHELLS = ("bash", "zsh", "fish")


def script(shell: str, commands: Sequence[str], options: Sequence[str],
           formats: Sequence[str]) -> str:
    """The completion script for `shell`, completing `commands`, `options` and the
    `formats` of `graph --format`."""
    template = {"bash": _BASH, "zsh": _ZSH, "fish": _FISH}[shell]
    fish = []
    for option in options:
        if option in ("-f", "--file", "-C", "--directory", "--format"):
            continue
        flag = f"-l {option[2:]}" if option.startswith("--") else f"-s {option[1:]}"
        fish.append(f"complete -c bflow {flag}")
    return (template.replace("@COMMANDS@", " ".join(commands))
            .replace("@OPTIONS@", " ".join(options))
            .replace("@FORMATS@", " ".join(formats))
            .replace("@FISH_OPTIONS@", "\n".join(fish)))


def run(*, shell: str, commands: Sequence[str], options: Sequence[str],
        formats: Sequence[str]) -> int:
    print(script(shell, commands, options, formats), end="")
    return EXIT_OK


# What a computed var stands for in the names a shell completes: its command is not run.
_NOT_RUN = "\x01computed var\x01"


def names(*, file: str | None) -> int:
    """Every task and foreach instance of the project, one per line, for the scripts. A Tab
    runs no command of the Flowfile: the project cache answers when it holds the project
    (it never holds one with computed vars); else, with computed vars, each is given a value
    no name holds, and the instances that hold it (a foreach over `{SRC}/*.c`) are left
    out, as are all instances where the project cannot load without the vars' values (an
    input named by one); task names never depend on a var."""
    from buildflow import fastpath
    from buildflow.fastpath import projectcache
    from buildflow.flowfile import resolve_path

    path = resolve_path(file, None)
    project = projectcache.cached(path, {})
    if project is None:
        flowfile = _parsed(path)
        if flowfile.computed:
            return _with_computed_vars(path, flowfile)
        project = fastpath.load(file=file, overrides={}).project
    return _print_names(project.tasks, [])


def _parsed(path: str) -> Flowfile:
    """The Flowfile at `path` parsed, not resolved (no var is computed)."""
    import os

    from buildflow import scripts
    from buildflow.flowfile import load, parse_objects
    from buildflow.locate import canonical_flowfile

    path = canonical_flowfile(path)
    declared = scripts.SCRIPTS.get(os.path.realpath(path))
    return load(path) if declared is None else parse_objects(path, declared.data)


def _with_computed_vars(path: str, flowfile: Flowfile) -> int:
    from buildflow.errors import FlowfileError
    from buildflow.project import load

    try:
        tasks = load(path, {name: _NOT_RUN for name, _ in flowfile.computed}).tasks
    except FlowfileError:
        tasks = {}  # the task names alone
    return _print_names({name: task for name, task in tasks.items() if _NOT_RUN not in name},
                        [decl.name for decl in flowfile.tasks])


def _print_names(tasks: Mapping[str, Task], declared: Sequence[str]) -> int:
    """The task names (`declared`, then those of `tasks`), then the instances."""
    bases = dict.fromkeys([*declared, *(task.base for task in tasks.values())])
    print("\n".join([*bases, *(name for name in tasks if name not in bases)]))
    return EXIT_OK
