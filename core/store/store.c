/* store.c -- object-store dispatch (being written). */
#include "store.h"
