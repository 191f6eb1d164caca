"""Every Redis key and channel name jobapp uses, in one place.

RQ owns its own keys (``rq:job:<id>``, queues, registries); everything jobapp adds
lives under the ``jobapp:`` prefix so operators can tell the two apart.
"""

PREFIX = "jobapp"

#: Pub/sub channel on which "<job id> <state as stored>" is published after a state is recorded
#: (a message of the id alone, as older versions sent, means: read it).
CHANGES_CHANNEL = f"{PREFIX}:changes"

#: Pub/sub channel announcing each newly queued job as "<user id> <job id>" (for per-user streams).
NEW_JOBS_CHANNEL = f"{PREFIX}:new-jobs"

#: Pub/sub channel on which "<job id> <line id>" is published after lines are appended to a job's log.
LOG_CHANNEL = f"{PREFIX}:log-lines"

#: Held by the one web process that checks for jobs whose worker died.
REAPER_LOCK = f"{PREFIX}:reaper-lock"


def job_state(job_id: str) -> str:
    """The job's latest contract payload (JSON), as recorded by the statestore."""
    return f"{PREFIX}:state:{job_id}"


def job_log(job_id: str) -> str:
    """The job's user-facing log lines (sorted set: "<seq>:<line>" scored by the line's event id)."""
    return f"{PREFIX}:log:{job_id}"


def job_log_head(job_id: str) -> str:
    """The job's log counters (hash: ``seq`` lines written, ``u`` last line's id, ``dropped`` by the cap)."""
    return f"{PREFIX}:log-head:{job_id}"


def user_jobs(user_id: str) -> str:
    """A user's jobs, newest last (sorted set: job id scored by queue time in epoch ms)."""
    return f"{PREFIX}:user-jobs:{user_id}"


def job_stats(job_type: str) -> str:
    """Counts of finished jobs of a type, by status, and a histogram of their run times (hash)."""
    return f"{PREFIX}:job-stats:{job_type}"


def character(character_id: str) -> str:
    """A character profile made by the character job (JSON)."""
    return f"{PREFIX}:character:{character_id}"


def file(file_id: str) -> str:
    """A file a job stored as its result (hash: owner, contentType, data, filename?, jobId?)."""
    return f"{PREFIX}:file:{file_id}"


#: Live web processes (sorted set, scored by when their registration expires).
STREAM_PROCESSES = f"{PREFIX}:stream-processes"


def scheduler_wake(queue: str) -> str:
    """A list a jobapp scheduler waits on (BLPOP): pushed when a job of ``queue`` is scheduled."""
    return f"{PREFIX}:scheduler-wake:{queue}"


def stream_counts(process: str) -> str:
    """One web process's open streams per user (hash user -> count)."""
    return f"{PREFIX}:streams:{process}"


#: Prefix of the rate limiter's counters.
RATE_LIMIT_PREFIX = f"{PREFIX}:ratelimit"


def rate_limit(scope: str, user_id: str) -> str:
    """One user's sliding-window counters on one route (hash: "<amount>/<seconds>:w|c|p" per limit)."""
    return f"{RATE_LIMIT_PREFIX}:{scope}:{user_id}"
