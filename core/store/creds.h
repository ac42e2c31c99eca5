/*
 * creds.h -- where S3 credentials, the region and the endpoint come from.
 *
 * Credentials, first match wins:
 *   1. explicit options (access_key_id + secret_access_key [+ token]);
 *   2. an explicit profile option (sf_options.profile), if it has keys;
 *   3. environment: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/
 *      AWS_SESSION_TOKEN, then S3_ACCESS_KEY_ID/S3_SECRET_ACCESS_KEY/
 *      S3_SESSION_TOKEN;
 *   4. the profile AWS_PROFILE (default "default") from the shared
 *      credentials file (AWS_SHARED_CREDENTIALS_FILE, ~/.aws/credentials)
 *      then the config file (AWS_CONFIG_FILE, ~/.aws/config, sections
 *      "[profile x]" or "[default]");
 *   5. EC2 instance metadata, IMDSv2 (token PUT, then role credentials),
 *      at AWS_EC2_METADATA_SERVICE_ENDPOINT (default
 *      http://169.254.169.254), skipped when AWS_EC2_METADATA_DISABLED is
 *      "true". Short timeouts; such credentials carry an expiry.
 * Anonymous access is never a fallback: only no_sign_request gives it.
 *
 * Region: option, AWS_REGION, S3_REGION, AWS_DEFAULT_REGION, profile
 * config, "us-east-1". Endpoint: option, AWS_ENDPOINT_URL_S3,
 * AWS_ENDPOINT_URL, SLATEDB_S3_ENDPOINT_URL, profile endpoint_url
 * (an "s3 =" sub-section's endpoint_url first), none.
 *
 * Secrets: nothing here logs; error messages name sources, never values.
 */
#ifndef SF_CREDS_H
#define SF_CREDS_H

#include <stddef.h>

#include "store_impl.h"

struct creds {
	char access_key_id[128];
	char secret_access_key[256];
	char session_token[4096]; /* "" if none */
	double expires;           /* wall-clock seconds; 0 = never */
	char source[64];          /* "options", "environment", "profile x", "imds" */
};

/* Resolves credentials (see above). 0, or SF_EAUTH with a message listing
 * what was tried, or SF_ENOMEM. May do network I/O (IMDS). */
int creds_resolve(const struct store_conf *c, struct creds *out, char *err,
		  size_t errlen);

/* The region and endpoint ("" = AWS default) into out. */
void creds_region(const struct store_conf *c, char *out, size_t outlen);
void creds_endpoint(const struct store_conf *c, char *out, size_t outlen);

/* Looks `key` up in profile `profile` of the shared files (credentials
 * file first when prefer_credentials, else config first). 0 if found. */
int creds_profile_get(const char *profile, const char *key,
		      int prefer_credentials, char *out, size_t outlen);

/* IMDSv2 fetch (exposed for tests). */
int creds_imds(struct creds *out, char *err, size_t errlen);

/* Wipes secrets. */
void creds_wipe(struct creds *c);

#endif
