"""The policy for carrying the evaluation cache across runs with actions/cache, shared by the
nightly workflow's tests and the composite action's."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

_PRIMARY_KEY = re.compile(r"\$\{\{\s*steps\.([\w-]+)\.outputs\.cache-primary-key\s*\}\}")


def eval_cache_problems(steps: Sequence[Mapping[str, Any]]) -> list[str]:
    """What keeps ``steps`` from restoring the evaluation cache before the bisect and saving
    its additions after it, whatever the verdict, under a key of their own."""
    uses = [str(step.get("uses", "")) for step in steps]
    restores = [i for i, u in enumerate(uses) if u.startswith("actions/cache/restore@")]
    saves = [i for i, u in enumerate(uses) if u.startswith("actions/cache/save@")]
    readers = [i for i, s in enumerate(steps) if "MODEL_BISECT_CACHE_DIR" in s.get("env", {})]
    if len(restores) != 1 or len(saves) != 1 or len(readers) != 1:
        return [
            f"want one cache restore, one save and one step given MODEL_BISECT_CACHE_DIR, found"
            f" {len(restores)}, {len(saves)} and {len(readers)}"
        ]
    (restore,), (save,), (reader,) = restores, saves, readers
    problems = []
    restored, saved = steps[restore].get("with", {}), steps[save].get("with", {})
    folder = steps[reader]["env"]["MODEL_BISECT_CACHE_DIR"]
    if not restore < reader < save:
        problems.append("the cache is not restored before the bisect and saved after it")
    if restored.get("path") != folder or saved.get("path") != folder:
        problems.append(f"the cached path is not the bisect's MODEL_BISECT_CACHE_DIR {folder}")
    key = str(restored.get("key", ""))
    if "github.run_id" not in key:
        problems.append("the key does not change every run: a saved cache is never updated")
    prefixes = [line for line in str(restored.get("restore-keys", "")).splitlines() if line]
    if not prefixes:
        problems.append("no restore-keys: a night never starts from the previous night's cache")
    problems += [
        f"restore-key {p} is not a prefix of the key" for p in prefixes if not key.startswith(p)
    ]
    found = _PRIMARY_KEY.fullmatch(str(saved.get("key", "")).strip())
    if found is None or found.group(1) != steps[restore].get("id"):
        problems.append("the save does not use the restore step's primary key")
    condition = str(steps[save].get("if", ""))
    if "!cancelled()" not in condition and "always()" not in condition:
        problems.append("the cache is saved only when the job succeeds (a regression fails it)")
    return problems
