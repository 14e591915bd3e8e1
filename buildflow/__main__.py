from buildflow.cli import main

raise SystemExit(main())
