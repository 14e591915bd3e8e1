#include <stdio.h>

#include "count.h"
#include "greeting.h"

int main(void) {
    printf("%s, world (%d)\n", greeting(), count());
    return 0;
}
