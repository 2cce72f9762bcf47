#!/usr/bin/env bash
# deploy.sh deploys keygate as an HTTP Cloud Run function (Cloud Functions
# gen2), and with EVENTS_TOPIC its events: the topic, the private Sweep
# function and the Cloud Scheduler job that calls it; with STRIPE_KEY_SECRET
# the Sweep function and its job too, to export usage to Stripe, with the
# key from Secret Manager. Configuration comes
# from the environment; run with --help for the list. With --dry-run it
# prints the gcloud commands instead of running them.
set -euo pipefail

# The function's configuration variables (see the README). Each one that is
# set to a non-empty value in the deployer's environment is passed to the
# function; the others are left out so the function uses its defaults.
readonly FUNCTION_VARS=(
	FIRESTORE_DATABASE
	KEYS_COLLECTION
	API_KEY_HEADER
	KEY_PREFIX
	KEY_CACHE_SIZE
	KEY_CACHE_TTL
	KEY_STALE_TTL
	KEY_NEGATIVE_TTL
	STORE_TIMEOUT
	USAGE_FLUSH_INTERVAL
	SHUTDOWN_TIMEOUT
	DEFAULT_RATE_LIMIT
	DEFAULT_BURST
	DEFAULT_MONTHLY_QUOTA
	DEFAULT_MAX_KEYS
	KEY_DEFAULT_SCOPES
	KEY_SCOPES
	REDIS_URL
	REDIS_TIMEOUT
	GITHUB_SECRET_SCANNING_KEYS_URL
	LEAKED_KEY_ACTION
	CLIENT_ADDRESS
	EVENTS_TOPIC
	STRIPE_METER_EVENT
)

# The delimiter of the --set-env-vars list (see `gcloud topic escaping`):
# with it, a value that contains a comma cannot split the list.
readonly DELIM='@'

usage() {
	cat <<'EOF'
Usage: deploy.sh [--dry-run]

Deploys keygate as an HTTP Cloud Run function (gen2, runtime go126, entry
point API, unauthenticated invocation: keygate checks API keys itself) from
the directory that holds deploy.sh. With EVENTS_TOPIC set, also (see
docs/events.md):
  - creates the Pub/Sub topic if it does not exist, and lets the runtime
    service account publish to it (roles/pubsub.publisher);
  - deploys the sweep, the same source at entry point Sweep, private (no
    unauthenticated invocation), with the same configuration;
  - lets the scheduler's service account invoke it (run.invoker) and creates,
    or updates, the Cloud Scheduler job that POSTs to it every 5 minutes with
    an OIDC token of that account.
With STRIPE_KEY_SECRET set (see docs/billing.md), also, events or not:
  - lets the runtime service account read that secret
    (roles/secretmanager.secretAccessor), and deploys the sweep, its invoker
    and its job as above, the sweep alone given STRIPE_SECRET_KEY from the
    secret (the API function never calls Stripe), so that each sweep
    exports the linked owners' usage to their Stripe meters.

  --dry-run   print the gcloud commands, shell-quoted, one a line, instead of
              running them (the topic and the job: their create commands; a
              run creates them only if missing, and else updates the job)
  -h, --help  print this help

Deployment settings (environment):
  GOOGLE_CLOUD_PROJECT  project (default: gcloud config get-value project)
  FUNCTION_NAME         function name (default: keygate)
  REGION                region (default: us-central1)
  SERVICE_ACCOUNT       runtime service account email (default: none, so
                        gcloud uses the default compute service account,
                        PROJECT_NUMBER-compute@developer.gserviceaccount.com)
  SWEEP_FUNCTION_NAME   the sweep's function name, and its scheduler job's
                        (default: FUNCTION_NAME-sweep)
  SCHEDULER_SERVICE_ACCOUNT
                        the service account the scheduler job calls the
                        sweep as (default: the runtime one)
  CPU                   vCPUs per instance (default: 1)
  MEMORY                memory limit (default: 512Mi)
  CONCURRENCY           requests an instance serves at once (default: 80;
                        more than 1 needs CPU of at least 1)
  TIMEOUT               request timeout (default: 60s)
  MAX_INSTANCES         maximum instances (default: none, gcloud's default)
  VPC_CONNECTOR         Serverless VPC Access connector, name or full ID, to
                        reach Memorystore (default: none)
  VPC_EGRESS            traffic sent through the connector: private-ranges-only
                        (default with a connector) or all
  REDIS_URL_SECRET      Secret Manager secret holding REDIS_URL, as
                        SECRET:VERSION (for example keygate-redis:latest):
                        keeps a Memorystore AUTH password out of the
                        function's plain configuration; not with REDIS_URL
  REDIS_CA_SECRET       Secret Manager secret holding REDIS_CA_CERT (PEM),
                        SECRET:VERSION: Memorystore's certificate authority,
                        for a rediss:// REDIS_URL (in-transit encryption)
  STRIPE_KEY_SECRET     Secret Manager secret of the project holding
                        STRIPE_SECRET_KEY, SECRET or SECRET:VERSION (default
                        version: latest), given to the sweep only; the key
                        itself is never in deploy.sh's environment, so
                        STRIPE_SECRET_KEY set is refused

Function configuration (environment), passed to the function with
--set-env-vars only when set and non-empty; GOOGLE_CLOUD_PROJECT is always
passed:
  FIRESTORE_DATABASE KEYS_COLLECTION API_KEY_HEADER KEY_PREFIX
  KEY_CACHE_SIZE KEY_CACHE_TTL KEY_STALE_TTL KEY_NEGATIVE_TTL STORE_TIMEOUT
  USAGE_FLUSH_INTERVAL SHUTDOWN_TIMEOUT DEFAULT_RATE_LIMIT DEFAULT_BURST
  DEFAULT_MONTHLY_QUOTA DEFAULT_MAX_KEYS KEY_DEFAULT_SCOPES KEY_SCOPES
  REDIS_URL REDIS_TIMEOUT GITHUB_SECRET_SCANNING_KEYS_URL LEAKED_KEY_ACTION
  CLIENT_ADDRESS
  EVENTS_TOPIC (a topic ID in the project, or projects/PROJECT/topics/TOPIC)
  STRIPE_METER_EVENT (the Stripe meter's event name; default api_requests)
Values must not contain '@', the --set-env-vars delimiter; so a REDIS_URL
with a password goes in REDIS_URL_SECRET.
EOF
}

die() {
	printf 'deploy.sh: %s\n' "$*" >&2
	exit 1
}

dry_run=false
case $# in
0) ;;
1)
	case $1 in
	--dry-run) dry_run=true ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		printf 'deploy.sh: unknown argument: %s\n' "$1" >&2
		usage >&2
		exit 2
		;;
	esac
	;;
*)
	printf 'deploy.sh: too many arguments\n' >&2
	usage >&2
	exit 2
	;;
esac

# The source is the module root, where deploy.sh lives, wherever it is run
# from.
source_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)

function_name=${FUNCTION_NAME:-keygate}
sweep_name=${SWEEP_FUNCTION_NAME:-${function_name}-sweep}
region=${REGION:-us-central1}
cpu=${CPU:-1}
memory=${MEMORY:-512Mi}
concurrency=${CONCURRENCY:-80}
timeout=${TIMEOUT:-60s}

if ! [[ $cpu =~ ^([0-9]+(\.[0-9]*)?|\.[0-9]+|[1-9][0-9]*m)$ ]]; then
	die "CPU=${cpu}: want a number of vCPUs such as 1, 2 or .5, or millicpus such as 2000m"
fi
# Below 1 vCPU, Cloud Run serves one request at a time per instance.
if ! [[ $concurrency =~ ^[1-9][0-9]*$ ]]; then
	die "CONCURRENCY=${concurrency}: want a whole number of requests, 1 or more"
fi
if ((concurrency > 1)) && ! awk -v c="${cpu%m}" -v milli="$([[ $cpu == *m ]] && echo 1 || echo 0)" \
	'BEGIN { if (milli) c /= 1000; exit !(c + 0 >= 1) }'; then
	die "CPU=${cpu} with CONCURRENCY=${concurrency}: Cloud Run serves one request at a time below 1 vCPU; set CPU to 1 or more, or CONCURRENCY=1"
fi
case ${VPC_EGRESS:-} in
'' | private-ranges-only | all) ;;
*) die "VPC_EGRESS=${VPC_EGRESS}: want private-ranges-only or all" ;;
esac
if [[ -n ${VPC_EGRESS:-} && -z ${VPC_CONNECTOR:-} ]]; then
	die "VPC_EGRESS=${VPC_EGRESS} without VPC_CONNECTOR: egress settings apply to a connector's traffic"
fi
if [[ -n ${REDIS_URL_SECRET:-} && -n ${REDIS_URL:-} ]]; then
	die "REDIS_URL and REDIS_URL_SECRET are both set: give the URL one way"
fi
# A certificate is several lines: it goes through Secret Manager.
if [[ -n ${REDIS_CA_CERT:-} ]]; then
	die "REDIS_CA_CERT is set: put the certificate in Secret Manager and name the secret in REDIS_CA_SECRET"
fi
# The Stripe key goes through Secret Manager only, never shown: a key in
# the environment would otherwise be left out without a word.
if [[ -n ${STRIPE_SECRET_KEY:-} ]]; then
	die "STRIPE_SECRET_KEY is set: put the key in Secret Manager and name the secret in STRIPE_KEY_SECRET (see docs/billing.md); deploy.sh never passes the key itself"
fi
stripe_secret=${STRIPE_KEY_SECRET:-} stripe_version=
if [[ -n $stripe_secret ]]; then
	if ! [[ $stripe_secret =~ ^([A-Za-z0-9_-]{1,255})(:([1-9][0-9]*|latest))?$ ]]; then
		die "STRIPE_KEY_SECRET=${stripe_secret}: want the name of a secret of the project, SECRET or SECRET:VERSION (a number, or latest)"
	fi
	stripe_secret=${BASH_REMATCH[1]} stripe_version=${BASH_REMATCH[3]:-latest}
fi

project=${GOOGLE_CLOUD_PROJECT:-}
if [[ -z $project ]] && command -v gcloud >/dev/null 2>&1; then
	project=$(gcloud config get-value project 2>/dev/null) || project=
fi
if [[ -z $project ]]; then
	die "no project: set GOOGLE_CLOUD_PROJECT or run 'gcloud config set project PROJECT_ID'"
fi

# The topic: an ID in the project, or a full name in any project.
topic_project=$project topic_id=${EVENTS_TOPIC:-}
if [[ $topic_id =~ ^projects/([^/]+)/topics/([^/]+)$ ]]; then
	topic_project=${BASH_REMATCH[1]} topic_id=${BASH_REMATCH[2]}
fi

if [[ $project == *"$DELIM"* ]]; then
	die "GOOGLE_CLOUD_PROJECT=${project}: contains '${DELIM}', the --set-env-vars delimiter; values cannot contain it"
fi
env_vars="^${DELIM}^GOOGLE_CLOUD_PROJECT=${project}"
for name in "${FUNCTION_VARS[@]}"; do
	value=${!name:-}
	if [[ -z $value ]]; then
		continue
	fi
	if [[ $value == *"$DELIM"* ]]; then
		if [[ $name == REDIS_URL ]]; then # not shown: it holds a password
			die "REDIS_URL contains '${DELIM}', so it holds a password: put it in Secret Manager and name the secret in REDIS_URL_SECRET"
		fi
		die "${name}=${value}: contains '${DELIM}', the --set-env-vars delimiter; values cannot contain it"
	fi
	env_vars+="${DELIM}${name}=${value}"
done

# Check the function's configuration with the function's own rules
# (apikey.LoadConfig, through the CLI) before deploying it: a bad value would
# otherwise deploy, and make every request of the function a 500.
if ! command -v go >/dev/null 2>&1; then
	die "go not found: deploy.sh checks the configuration with 'go run ./cmd/apikey config check'"
fi
if ! check=$(cd "$source_dir" && GOOGLE_CLOUD_PROJECT=$project go run ./cmd/apikey config check 2>&1); then
	check=${check%$'\n'exit status *} # go run's own line
	die "the function's configuration is invalid: ${check#apikey: }"
fi

# The flags both functions share: the same source, shape and configuration.
shared=(
	--gen2
	--runtime=go126
	--trigger-http
	--source="$source_dir"
	--project="$project"
	--region="$region"
	--cpu="$cpu"
	--memory="$memory"
	--concurrency="$concurrency"
)
# Without --service-account, gcloud runs the function as the project's default
# compute service account (PROJECT_NUMBER-compute@developer.gserviceaccount.com).
if [[ -n ${SERVICE_ACCOUNT:-} ]]; then
	shared+=(--service-account="$SERVICE_ACCOUNT")
fi
if [[ -n ${MAX_INSTANCES:-} ]]; then
	shared+=(--max-instances="$MAX_INSTANCES")
fi
# Memorystore has a private address only: the function reaches it through a
# connector, and sends it only private ranges unless told otherwise.
if [[ -n ${VPC_CONNECTOR:-} ]]; then
	shared+=(--vpc-connector="$VPC_CONNECTOR" --egress-settings="${VPC_EGRESS:-private-ranges-only}")
fi
shared+=(--set-env-vars="$env_vars")
secrets=()
if [[ -n ${REDIS_URL_SECRET:-} ]]; then
	secrets+=("REDIS_URL=${REDIS_URL_SECRET}")
fi
if [[ -n ${REDIS_CA_SECRET:-} ]]; then
	secrets+=("REDIS_CA_CERT=${REDIS_CA_SECRET}")
fi
# The sweep's secrets: the shared ones and the Stripe key, which only the
# sweep uses.
sweep_secrets=("${secrets[@]}")
if [[ -n $stripe_secret ]]; then
	sweep_secrets+=("STRIPE_SECRET_KEY=${stripe_secret}:${stripe_version}")
fi

# set_secrets prints the --set-secrets flag of its arguments, if any.
set_secrets() {
	if (($#)); then
		local IFS=,
		printf -- '--set-secrets=%s\n' "$*"
	fi
}
mapfile -t api_secrets_flag < <(set_secrets "${secrets[@]}")
mapfile -t sweep_secrets_flag < <(set_secrets "${sweep_secrets[@]}")

# run prints a command (--dry-run) or runs it.
run() {
	if $dry_run; then
		printf '%q' "$1"
		printf ' %q' "${@:2}"
		printf '\n'
	else
		"$@"
	fi
}

if ! $dry_run && ! command -v gcloud >/dev/null 2>&1; then
	die "gcloud not found: install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install)"
fi

# The accounts: the runtime one publishes the events, the scheduler's
# calls the sweep. Without SERVICE_ACCOUNT the runtime one is the default
# compute account, named by the project's number: a dry run, which asks
# gcloud nothing, shows it as PROJECT_NUMBER.
runtime_account=${SERVICE_ACCOUNT:-}
if [[ (-n $topic_id || -n $stripe_secret) && -z $runtime_account ]]; then
	number=PROJECT_NUMBER
	if ! $dry_run; then
		number=$(gcloud projects describe "$project" --format='value(projectNumber)')
		[[ -n $number ]] || die "no number for project ${project}: set SERVICE_ACCOUNT"
	fi
	runtime_account="${number}-compute@developer.gserviceaccount.com"
fi
scheduler_account=${SCHEDULER_SERVICE_ACCOUNT:-$runtime_account}

# The topic first: the function publishes to it from its first write.
if [[ -n $topic_id ]]; then
	topic=(pubsub topics create "$topic_id" --project="$topic_project")
	if $dry_run || ! gcloud pubsub topics describe "$topic_id" --project="$topic_project" >/dev/null 2>&1; then
		run gcloud "${topic[@]}"
	fi
	run gcloud pubsub topics add-iam-policy-binding "$topic_id" --project="$topic_project" \
		--member="serviceAccount:${runtime_account}" --role=roles/pubsub.publisher
fi

run gcloud functions deploy "$function_name" "${shared[@]}" "${api_secrets_flag[@]}" \
	--entry-point=API --allow-unauthenticated --timeout="$timeout"

if [[ -z $topic_id && -z $stripe_secret ]]; then
	exit 0
fi

# The Stripe key: readable by the runtime account before the sweep that
# reads it is deployed. Only the secret's name is shown, never its value.
if [[ -n $stripe_secret ]]; then
	run gcloud secrets add-iam-policy-binding "$stripe_secret" --project="$project" \
		--member="serviceAccount:${runtime_account}" --role=roles/secretmanager.secretAccessor
fi

# The sweep: private, and given the 3 minutes of the scheduler's default
# attempt deadline (a run bounds itself to 2).
run gcloud functions deploy "$sweep_name" "${shared[@]}" "${sweep_secrets_flag[@]}" \
	--entry-point=Sweep --no-allow-unauthenticated --timeout=180s
run gcloud functions add-invoker-policy-binding "$sweep_name" --project="$project" --region="$region" \
	--member="serviceAccount:${scheduler_account}"
# A gen2 function answers at its cloudfunctions.net URL too; the token's
# audience is the URL called.
sweep_url="https://${region}-${project}.cloudfunctions.net/${sweep_name}"
job=(
	"$sweep_name" --project="$project" --location="$region"
	--schedule='*/5 * * * *' --uri="$sweep_url" --http-method=POST
	--oidc-service-account-email="$scheduler_account" --oidc-token-audience="$sweep_url"
	--attempt-deadline=180s
)
if ! $dry_run && gcloud scheduler jobs describe "$sweep_name" --project="$project" --location="$region" >/dev/null 2>&1; then
	run gcloud scheduler jobs update http "${job[@]}"
else
	run gcloud scheduler jobs create http "${job[@]}"
fi
