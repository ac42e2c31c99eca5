/*
 * options.c -- defaults for struct sf_options and struct sf_build_options.
 * Defaults live here and only here; every module reads the filled struct.
 */
#include <string.h>

#include "shardyfs.h"

void sf_options_init(struct sf_options *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->addressing = SF_ADDR_AUTO;
	opt->connect_timeout_ms = 3000;
	opt->request_timeout_ms = 30000;
	opt->max_attempts = 5;
	opt->retry_budget_ms = 20000;
	opt->access_mode = SF_ACCESS_AUTO;
	opt->cache_bytes = 256ull * 1024 * 1024;
	opt->auto_range_shard_bytes = 16ull * 1024 * 1024;
	opt->auto_range_total_bytes = 2ull * 1024 * 1024 * 1024;
	opt->use_sidecar = 1;
	opt->threads = 4;
	opt->staleness_s = 0;
	opt->log_level = SF_LOG_WARN;
}

void sf_build_options_init(struct sf_build_options *bo)
{
	memset(bo, 0, sizeof(*bo));
	bo->num_dbs = 1;
	bo->key_encoding = SF_ENC_U64BE;
	bo->emit_sidecar = 1;
	bo->key_col = "_key";
}
