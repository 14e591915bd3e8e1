#ifndef GREETING_H
#define GREETING_H

#define GREETING "hello"

const char *greeting(void);

#endif
