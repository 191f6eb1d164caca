"""The registry of job types: what ``@job_type`` declares and ``load(JOBAPP_JOBS)`` makes current.

A team's own module registers its types with the public decorator and jobapp never needs
editing. Web processes and workers call ``load`` once at start; every route, the job list, the
reaper, the metrics and the OpenAPI document read ``REGISTRY`` at app-creation or request time,
never at import time. Anything that would give a half-working server (a module that cannot be
imported, two types with one name or route, a function RQ's worker could not import by name)
stops ``load`` with a ``RegistryError`` that names the module and the problem.
"""

from __future__ import annotations

import importlib
import re
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional, Type, Union

from rq.job import Retry

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
#: Collections jobapp itself uses under /api/v1; a job type's route may not take them.
RESERVED_ROUTES = frozenset({"jobs", "sse", "files", "job-types", "docs", "openapi.json"})

JobFunction = Callable[[str, dict], Any]


class RegistryError(RuntimeError):
    """The configured job modules cannot make a working registry; the process must not start."""


@dataclass(frozen=True)
class JobType:
    """One registered job type: its routes, its queue, its request schema and the function that runs it."""

    name: str  # the contract's job type (``jobType``), in the stream and snapshot URLs
    route: str  # POST /api/v1/<route>/queue
    queue: str  # the RQ queue its jobs go to
    func: str  # dotted path RQ's worker imports (jobs never carry pickled callables)
    schema: Type[Any]  # pydantic model that validates the queue request body
    describe: Callable[[dict], str]  # what operators see in rq-dashboard
    timeout: Optional[int] = None  # seconds; None: JOB_TIMEOUT
    retry: Optional[Retry] = field(default=None, compare=False)  # RQ's retry policy, or None
    max_attempts: int = 1  # 1 + the retries ``retry`` allows
    module: str = ""  # the module that declared it (named in errors)
    function: Optional[JobFunction] = field(default=None, compare=False, repr=False)


#: The types of the modules last passed to ``load``, by name. Read it at request time.
REGISTRY: dict[str, JobType] = {}

_declared: list[JobType] = []  # every @job_type seen in this process, loaded or not
_capturing: list[list[JobType]] = []  # one list per module being imported by load()
_captured: dict[str, list[JobType]] = {}  # module name -> types declared while it was imported
_blueprints: list[Any] = []  # Flask blueprints the loaded modules export as ``blueprint``
_loaded: Optional[tuple[str, ...]] = None


def normalise_retry(retry: Union[None, int, Retry]) -> tuple[Optional[Retry], int]:
    """``None``, a number of retries, or RQ's ``Retry`` -> (``Retry`` or None, attempts in all)."""
    if retry is None or retry == 0:
        return None, 1
    if isinstance(retry, bool) or not isinstance(retry, (int, Retry)):
        raise TypeError("retry must be None, a number of retries, or rq.Retry")
    if isinstance(retry, int):
        if retry < 0:
            raise ValueError("retry must not be negative")
        retry = Retry(max=retry)
    return retry, int(retry.max) + 1


def _default_describe(name: str) -> Callable[[dict], str]:
    return lambda params: f"{name} job"


def job_type(name: str, route: Optional[str] = None, schema: Optional[Type[Any]] = None,
             describe: Optional[Callable[[dict], str]] = None, timeout: Optional[int] = None,
             retry: Union[None, int, Retry] = None, queue: Optional[str] = None) -> Callable[[JobFunction], JobFunction]:
    """Register the decorated ``function(owner, params) -> dict`` as the job type ``name``.

    ``route`` (default ``name``) gives ``POST /api/v1/<route>/queue``; ``queue`` (default ``name``)
    is the RQ queue; ``schema`` is the pydantic model of the request body; ``describe(params)`` is
    what rq-dashboard shows; ``timeout`` in seconds; ``retry`` is None, a number of retries or an
    ``rq.Retry``. The function is returned unchanged, so RQ imports it by its own dotted path.
    """
    route = route or name
    queue = queue or name
    for label, value in (("name", name), ("route", route), ("queue", queue)):
        if not isinstance(value, str) or not _NAME.match(value):
            raise ValueError(f"job_type {label} {value!r}: use 1-40 lowercase letters, digits, '-' or '_', "
                             "starting with a letter")
    if route in RESERVED_ROUTES:
        raise ValueError(f"job_type route {route!r} is taken by jobapp itself")
    if schema is None or not hasattr(schema, "model_validate") or not hasattr(schema, "model_json_schema"):
        raise TypeError(f"job_type {name!r}: schema must be a pydantic model class")
    if timeout is not None and (not isinstance(timeout, int) or timeout <= 0):
        raise ValueError(f"job_type {name!r}: timeout must be a positive number of seconds")
    normalised, attempts = normalise_retry(retry)

    def register(function: JobFunction) -> JobFunction:
        if not callable(function):
            raise TypeError(f"job_type {name!r} decorates something that is not a function")
        declared = JobType(
            name=name, route=route, queue=queue, func=f"{function.__module__}.{function.__qualname__}",
            schema=schema, describe=describe or _default_describe(name), timeout=timeout,
            retry=normalised, max_attempts=attempts, module=function.__module__, function=function)
        _declared.append(declared)
        for capture in _capturing:
            capture.append(declared)
        return function

    return register


def _importable(job: JobType) -> Optional[str]:
    """Why RQ's worker could not import ``job.func`` back to the same function, or None if it can."""
    from rq.utils import import_attribute

    if job.module == "__main__":
        return "is defined in __main__ (a script), which a worker cannot import; move it into a module"
    if "<locals>" in job.func or "<lambda>" in job.func:
        return "is a lambda or a nested function; RQ imports job functions by name, so define it at module level"
    try:
        found = import_attribute(job.func)
    except Exception as exc:  # noqa: BLE001 - any failure means the worker would fail too
        return f"cannot be imported by name as {job.func!r} ({type(exc).__name__}: {exc})"
    if found is not job.function:
        return (f"{job.func!r} names another object than the decorated function (is it wrapped by another "
                "decorator, or renamed?); RQ would run that instead")
    return None


def _types_of(module_name: str) -> list[JobType]:
    prefix = module_name + "."
    found = list(_captured.get(module_name, ()))
    found += [t for t in _declared if t.module == module_name or t.module.startswith(prefix)]
    unique: dict[int, JobType] = {}
    for t in found:
        unique.setdefault(id(t.function), t)
    return list(unique.values())


def load(modules: Iterable[str]) -> dict[str, JobType]:
    """Import each of ``modules`` and make their job types the registry; raise ``RegistryError`` if unusable."""
    global _loaded
    if isinstance(modules, str):
        modules = modules.split(",")
    names = tuple(m.strip() for m in modules if m and m.strip())
    if not names:
        raise RegistryError("JOBAPP_JOBS lists no module; name at least one (the default is jobapp.demo)")
    found: dict[str, JobType] = {}
    routes: dict[str, JobType] = {}
    blueprints: list[Any] = []
    for module_name in names:
        capture: list[JobType] = []
        _capturing.append(capture)
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the module is unusable
            last = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
            where = f" at {last.filename}:{last.lineno}" if last else ""
            raise RegistryError(f"JOBAPP_JOBS module {module_name!r} cannot be imported: "
                                f"{type(exc).__name__}: {exc}{where}") from exc
        finally:
            _capturing.pop()
        _captured.setdefault(module_name, []).extend(capture)
        blueprint = getattr(module, "blueprint", None)
        if blueprint is not None and blueprint not in blueprints:
            blueprints.append(blueprint)
        declared = _types_of(module_name)
        if not declared:
            raise RegistryError(f"JOBAPP_JOBS module {module_name!r} registers no job type (decorate its job "
                                "functions with @job_type, and import the modules that do from its __init__)")
        for job in declared:
            problem = _importable(job)
            if problem:
                raise RegistryError(f"JOBAPP_JOBS module {module_name!r}: job type {job.name!r}: function {problem}")
            other = found.get(job.name)
            if other is not None and other.function is not job.function:
                raise RegistryError(f"JOBAPP_JOBS module {module_name!r}: job type name {job.name!r} clashes with "
                                    f"the one registered by {other.module!r}")
            other = routes.get(job.route)
            if other is not None and other.function is not job.function:
                raise RegistryError(f"JOBAPP_JOBS module {module_name!r}: job type {job.name!r} route "
                                    f"{job.route!r} clashes with job type {other.name!r} of {other.module!r}")
            found[job.name] = job
            routes[job.route] = job
    REGISTRY.clear()
    REGISTRY.update(found)
    _blueprints[:] = blueprints
    _loaded = names
    return REGISTRY


def loaded() -> Optional[tuple[str, ...]]:
    """The modules of the last ``load``, or None before any."""
    return _loaded


def ensure_loaded(modules: Iterable[str]) -> dict[str, JobType]:
    """Load ``modules`` unless a load already happened (scripts that call ``enqueue`` directly)."""
    if _loaded is None:
        load(modules)
    return REGISTRY


def get(name: str) -> Optional[JobType]:
    return REGISTRY.get(name)


def queue_names() -> tuple[str, ...]:
    """Every registered type's queue, each once, in registration order."""
    return tuple(dict.fromkeys(t.queue for t in REGISTRY.values()))


def blueprints() -> list[Any]:
    """Blueprints the loaded modules export (registered under /api/v1), e.g. the demo's results."""
    return list(_blueprints)
