/* fs_names.c -- key <-> file name codec (being written). */
#include "shardyfs.h"
