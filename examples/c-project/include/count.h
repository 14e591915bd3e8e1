#ifndef COUNT_H
#define COUNT_H

int count(void);

#endif
