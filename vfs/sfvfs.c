/* sfvfs.c -- range-read SQLite VFS (being written). */
#include "sfvfs.h"
