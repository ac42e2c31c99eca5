/* main.c -- the shardyfs command table (being written). */
#include <stdio.h>
int main(void)
{
	return 0;
}
