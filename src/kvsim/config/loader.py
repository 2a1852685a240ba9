"""Load a :class:`SimConfig` from presets, YAML files and ``--set`` overrides.

Layering, lowest first::

    schema defaults  <  preset YAML  <  config file  <  --set overrides  <  seed argument

Mappings are merged key by key; any other value (a scalar, a list, a catalog name) replaces
what was below it. A mapping whose ``kind`` changes (``workload: {kind: trace}`` over a
synthetic workload) replaces the mapping below instead of merging into it, so the keys of
the old kind do not leak into the new one.

Every problem is raised as :class:`kvsim.errors.ConfigError` with a one-line message that
names the dotted key path and what is allowed, e.g.
``scheduler.admission: input should be 'safe' or 'lazy' (got 'eager')``.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from kvsim.config.catalog import (
    GPUSpec,
    ModelSpec,
    gpu_catalog,
    load_catalog_file,
    model_catalog,
)
from kvsim.config.schema import SimConfig
from kvsim.errors import ConfigError

__all__ = [
    "config_to_yaml",
    "deep_merge",
    "list_presets",
    "load_config",
    "parse_override",
    "preset_text",
    "resolve_gpu",
    "resolve_gpu_name",
    "resolve_model",
    "validate_config",
]

_DESCRIPTION_RE = re.compile(r"^#\s*description:\s*(.*?)\s*$", re.IGNORECASE)
_LEADING_PATH_RE = re.compile(r"^([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)+):? (.+)$")


# --------------------------------------------------------------------------- YAML reading


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys and reads ``1e9`` as a float (YAML 1.2)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
        try:
            duplicate = key in seen
        except TypeError:  # unhashable key: let construct_mapping report it
            break
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _parse_yaml(text: str, origin: str) -> Any:
    """Parse YAML text; errors become a ConfigError naming ``origin`` and the line."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{origin}:{mark.line + 1}" if mark is not None else origin
        problem = exc.problem or exc.context or "syntax error"
        raise ConfigError(where, f"invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(origin, f"invalid YAML: {exc}") from None


def _parse_mapping(text: str, origin: str) -> dict[str, Any]:
    data = _parse_yaml(text, origin)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            origin, f"a config must be a mapping of sections, got {type(data).__name__}"
        )
    return data


def _read_config_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(p), "config file not found") from None
    except UnicodeDecodeError:
        raise ConfigError(str(p), "config file is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(str(p), f"cannot read config file: {exc.strerror}") from None
    return _parse_mapping(text, str(p))


# --------------------------------------------------------------------------- presets


@dataclass(frozen=True, slots=True)
class PresetDir:
    """The built-in YAML files of one folder under ``kvsim/presets`` (``""``: the top level).

    ``what`` names them in errors (``unknown <what> 'x'; known: ...``) raised at ``key``.
    Names are file stems, matched case-insensitively with ``.yaml`` optional.
    """

    subdir: str
    what: str
    key: str = "preset"

    def files(self) -> dict[str, Any]:
        """Stem -> resource of every ``*.yaml`` file in the folder ({} if there is none)."""
        root = resources.files("kvsim").joinpath("presets")
        if self.subdir:
            root = root.joinpath(self.subdir)
        if not root.is_dir():
            return {}
        return {
            f.name[: -len(".yaml")]: f
            for f in root.iterdir()
            if f.is_file() and f.name.endswith(".yaml")
        }

    def list(self) -> list[tuple[str, str]]:
        """``(name, description)`` pairs sorted by name; the description is the text of the
        file's leading ``# description: ...`` comment line."""
        return [
            (name, _description(f.read_text(encoding="utf-8")))
            for name, f in sorted(self.files().items())
        ]

    def text(self, name: str) -> str:
        """The YAML text of ``name``; an unknown name raises :class:`ConfigError`."""
        files = self.files()
        stem = name.strip().lower().removesuffix(".yaml")
        if stem not in files:
            known = ", ".join(sorted(files)) or "(none)"
            raise ConfigError(self.key, f"unknown {self.what} '{name}'; known: {known}")
        return str(files[stem].read_text(encoding="utf-8"))


def _description(text: str) -> str:
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("#"):
            break
        m = _DESCRIPTION_RE.match(stripped)
        if m:
            return m.group(1)
    return ""


_RUN_PRESETS = PresetDir("", "preset")


def list_presets() -> list[tuple[str, str]]:
    """Built-in run presets as ``(name, description)`` pairs, sorted by name."""
    return _RUN_PRESETS.list()


def preset_text(name: str) -> str:
    """The YAML text of built-in run preset ``name`` (case-insensitive, ``.yaml`` optional)."""
    return _RUN_PRESETS.text(name)


# --------------------------------------------------------------------------- merging


def _kind_changes(below: Mapping[str, Any], above: Mapping[str, Any]) -> bool:
    return "kind" in below and "kind" in above and below["kind"] != above["kind"]


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated by ``top``: mappings merge recursively, other values replace.

    A nested mapping whose ``kind`` differs between the two replaces the one in ``base``.
    Neither argument is modified.
    """
    out: dict[str, Any] = dict(base)
    for key, value in top.items():
        below = out.get(key)
        if (
            isinstance(below, Mapping)
            and isinstance(value, Mapping)
            and not _kind_changes(below, value)
        ):
            out[key] = deep_merge(below, value)
        else:
            out[key] = value
    return out


@cache
def _default_dump() -> dict[str, Any]:
    return SimConfig.model_validate({}).model_dump(mode="json")


def _allowed(model: type[BaseModel]) -> str:
    return ", ".join(sorted(model.model_fields))


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into ``(["a", "b", "c"], value)``.

    The value is parsed as YAML, so ``true``, ``3``, ``0.5``, ``1e9``, ``null`` and
    ``[1, 2]`` have their YAML types; anything else is a string.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    parts = key.split(".")
    if not sep or not key or any(not p.strip() for p in parts):
        raise ConfigError("--set", f"expected KEY.PATH=VALUE, got {text!r}")
    parts = [p.strip() for p in parts]
    if not raw.strip():
        return parts, None
    try:
        value = _parse_yaml(raw, key)
    except ConfigError:
        raise ConfigError(key, f"cannot parse value {raw!r} as YAML") from None
    return parts, value


def _apply_override(data: dict[str, Any], text: str) -> None:
    parts, value = parse_override(text)
    if parts[0] not in SimConfig.model_fields:
        hint = _did_you_mean(parts[0], SimConfig.model_fields)
        raise ConfigError(parts[0], f"unknown key{hint}; allowed: {_allowed(SimConfig)}")
    node = data
    default: Any = _default_dump()
    for i, part in enumerate(parts[:-1]):
        default = default.get(part) if isinstance(default, dict) else None
        child = node.get(part)
        if child is None:
            if default is not None and not isinstance(default, dict):
                where = ".".join(parts[: i + 1])
                raise ConfigError(
                    where,
                    f"is {default!r} (the default), not a mapping; cannot set {'.'.join(parts)}",
                )
            child = {}
        elif not isinstance(child, dict):
            where = ".".join(parts[: i + 1])
            raise ConfigError(where, f"is {child!r}, not a mapping; cannot set {'.'.join(parts)}")
        else:
            child = dict(child)
        node[part] = child
        node = child
    last = parts[-1]
    if last == "kind" and "kind" in node and node["kind"] != value:
        node.clear()
    node[last] = value


def _fill_default_kinds(data: dict[str, Any]) -> None:
    """Give a ``workload`` mapping without ``kind`` the schema's default kind."""
    workload = data.get("workload")
    if isinstance(workload, dict) and "kind" not in workload:
        data["workload"] = {"kind": _default_dump()["workload"]["kind"], **workload}


# --------------------------------------------------------------------------- validation


def _unwrap(tp: Any) -> Any:
    """Strip Annotated/Optional; a real union becomes a tuple of its members."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _unwrap(get_args(tp)[0])
    if origin is Union or origin is types.UnionType:
        members = [a for a in get_args(tp) if a is not type(None)]
        if len(members) == 1:
            return _unwrap(members[0])
        return tuple(members)
    return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _pick_branch(members: tuple[Any, ...], label: Any) -> Any:
    for m in members:
        if _is_model(m):
            kind = m.model_fields.get("kind")
            if kind is not None and kind.default == label:
                return m
            if label == m.__name__ or str(label).endswith(f" {m.__name__}]"):
                return m
        elif isinstance(m, type) and m.__name__ == label:
            return m
    return None


def _walk(loc: Sequence[Any]) -> tuple[str, Any, bool]:
    """Map a pydantic ``loc`` to ``(dotted path, type reached, ends on a union label)``.

    Union branch labels (``synthetic``, ``str``, ``function-after[..., ModelSpec]``) are
    dropped from the path.
    """
    tp: Any = SimConfig
    path = ""
    at_label = False
    for item in loc:
        tp = _unwrap(tp)
        if isinstance(tp, tuple):
            tp = _pick_branch(tp, item)
            at_label = True
            continue
        at_label = False
        if isinstance(item, int):
            path += f"[{item}]"
            args = get_args(tp) if tp is not None else ()
            tp = args[0] if args else None
            continue
        path = f"{path}.{item}" if path else str(item)
        tp = tp.model_fields[item].annotation if _is_model(tp) and item in tp.model_fields else None
    return path, _unwrap(tp), at_label


def _did_you_mean(word: str, options: Any) -> str:
    close = difflib.get_close_matches(str(word), list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _got(err: Mapping[str, Any]) -> str:
    value = err.get("input")
    if isinstance(value, (dict, list, tuple)) or err["type"] in ("missing", "extra_forbidden"):
        return ""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f" (got {text})"


_TYPE_WORDS = {
    "string_type": "a string",
    "model_type": "a mapping",
    "dict_type": "a mapping",
    "model_attributes_type": "a mapping",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "list_type": "a list",
    "tuple_type": "a list",
}


def _message(err: Mapping[str, Any]) -> tuple[str, str]:
    """One error as ``(path, message)``."""
    loc = err["loc"]
    etype = err["type"]
    path, _, _ = _walk(loc)
    ctx = err.get("ctx") or {}
    if etype == "extra_forbidden":
        _, parent, _ = _walk(loc[:-1])
        if _is_model(parent):
            hint = _did_you_mean(loc[-1], parent.model_fields)
            return path, f"unknown key; allowed: {_allowed(parent)}{hint}"
        return path, "unknown key"
    if etype in ("union_tag_invalid", "union_tag_not_found"):
        field = str(ctx.get("discriminator", "kind")).strip("'\"")
        _, members, _ = _walk(loc)
        tags = [m.model_fields[field].default for m in members or () if _is_model(m)]
        allowed = ", ".join(str(t) for t in tags) or str(ctx.get("expected_tags", ""))
        kpath = f"{path}.{field}" if path else field
        if etype == "union_tag_not_found":
            return kpath, f"missing; allowed kinds: {allowed}"
        return kpath, f"unknown kind {ctx.get('tag')!r}; allowed kinds: {allowed}"
    if etype == "missing":
        return path, "required key is missing"
    if etype in _TYPE_WORDS:
        return path, f"input should be {_TYPE_WORDS[etype]}{_got(err)}"
    msg = str(err["msg"])
    if etype in ("value_error", "assertion_error"):
        msg = re.sub(r"^(Value|Assertion) error, ", "", msg)
        if not path:
            m = _LEADING_PATH_RE.match(msg)
            if m:
                return m.group(1), m.group(2)
        return path, msg
    return path, msg[:1].lower() + msg[1:] + _got(err)


def _select(errors: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Drop the "wrong branch" type errors of smart unions when another branch went deeper."""
    label_roots: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for err in errors:
        _, _, at_label = _walk(err["loc"])
        if at_label and err["type"] in _TYPE_WORDS:
            label_roots.setdefault(tuple(err["loc"][:-1]), []).append(err)
    keep = []
    for err in errors:
        loc = tuple(err["loc"])
        roots = label_roots.get(loc[:-1], [])
        deeper = any(tuple(e["loc"][: len(loc) - 1]) == loc[:-1] and e not in roots for e in errors)
        if err in roots and deeper:
            continue
        keep.append(err)
    return keep


def _one_line(exc: ValidationError) -> ConfigError:
    errors = _select(list(exc.errors()))
    # A union whose every branch rejected the input type: "a string or a mapping".
    roots = [e for e in errors if e["type"] in _TYPE_WORDS and _walk(e["loc"])[2]]
    if roots and len(roots) == len(errors) and len({tuple(e["loc"][:-1]) for e in roots}) == 1:
        path, _, _ = _walk(roots[0]["loc"])
        words = " or ".join(dict.fromkeys(_TYPE_WORDS[e["type"]] for e in roots))
        return ConfigError(path, f"input should be {words}{_got(roots[0])}")
    pairs = [_message(e) for e in errors]
    missing = [p for (p, _), e in zip(pairs, errors, strict=True) if e["type"] == "missing"]
    if len(missing) > 1 and len(missing) == len(pairs):
        parents = {p.rpartition(".")[0] for p in missing}
        if len(parents) == 1:
            names = ", ".join(sorted(p.rpartition(".")[2] for p in missing))
            return ConfigError(parents.pop(), f"missing required keys: {names}")
    path, msg = pairs[0]
    if len(pairs) > 1:
        more = len(pairs) - 1
        msg += f" (and {more} more problem{'s' if more > 1 else ''})"
    return ConfigError(path, msg)


def first_error_line(
    exc: ValidationError,
    path_of: Callable[[Sequence[Any]], str],
    messages: Mapping[str, str] | None = None,
) -> ConfigError:
    """A one-line :class:`ConfigError` from the first error of ``exc``, for the simpler
    schemas of the drivers (``kvsim memory``, ``kvsim cache``): ``path_of`` turns a pydantic
    ``loc`` into a key path; ``messages`` replaces the message of an error type."""
    errors = exc.errors()
    err = errors[0]
    path = path_of(err["loc"])
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif messages and err["type"] in messages:
        msg = messages[err["type"]]
    if not path and ": " in msg:
        path, _, msg = msg.partition(": ")
    elif err["type"] not in ("missing", "extra_forbidden") and "input" in err:
        value = err["input"]
        if not isinstance(value, (dict, list)):
            msg += f" (got {value!r})"
    if len(errors) > 1:
        msg += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return ConfigError(path, msg[:1].lower() + msg[1:])


def validate_config(data: Mapping[str, Any]) -> SimConfig:
    """Validate a raw mapping into a :class:`SimConfig`; errors become one-line ConfigErrors."""
    raw = dict(data)
    _fill_default_kinds(raw)
    try:
        return SimConfig.model_validate(raw)
    except ValidationError as exc:
        raise _one_line(exc) from None


# --------------------------------------------------------------------------- public API


def load_config(
    path: str | Path | None = None,
    preset: str | None = None,
    overrides: Sequence[str] = (),
    seed: int | None = None,
    calibration: str | Path | None = None,
) -> SimConfig:
    """Build a validated :class:`SimConfig`.

    Starts from the schema defaults, merges the preset ``preset`` (if given), then the YAML
    file ``path`` (if given), then the calibration profile ``calibration`` (a shipped name or
    a YAML path; :func:`kvsim.config.calibration.apply_calibration`), applies each
    ``--set``-style override ``a.b.c=value`` in order, then ``seed`` (if not None). The
    model and GPU names are checked against the catalog (see :func:`resolve_model`). Raises
    :class:`ConfigError` with a one-line message.
    """
    data: dict[str, Any] = {}
    if preset is not None:
        data = _parse_mapping(preset_text(preset), f"preset {preset}")
    if path is not None:
        data = deep_merge(data, _read_config_file(path))
    if calibration is not None:
        from kvsim.config.calibration import apply_calibration

        data = apply_calibration(data, calibration)
        data["calibration"] = str(calibration)
    for text in overrides:
        _apply_override(data, text)
    if seed is not None:
        data["seed"] = seed
    cfg = validate_config(data)
    resolve_model(cfg)
    resolve_gpu(cfg)
    for spec in cfg.cluster.instances:
        if isinstance(spec.gpu, str):
            resolve_gpu_name(cfg, spec.gpu)
    return cfg


def _extra_catalogs(cfg: SimConfig) -> tuple[dict[str, ModelSpec], dict[str, GPUSpec]]:
    models: dict[str, ModelSpec] = {}
    gpus: dict[str, GPUSpec] = {}
    for i, file in enumerate(cfg.catalog_files):
        try:
            m, g = load_catalog_file(file)
        except yaml.MarkedYAMLError as exc:
            line = exc.problem_mark.line + 1 if exc.problem_mark is not None else "?"
            raise ConfigError(f"catalog_files[{i}]", f"{file}:{line}: invalid YAML") from None
        except (yaml.YAMLError, TypeError, AttributeError):
            raise ConfigError(
                f"catalog_files[{i}]", f"{file}: expected a mapping with 'models:'/'gpus:'"
            ) from None
        models.update(m)
        gpus.update(g)
    return models, gpus


def resolve_model(cfg: SimConfig) -> ModelSpec:
    """The :class:`ModelSpec` of ``cfg.model``: inline, or a catalog name (case-insensitive).

    Entries of ``cfg.catalog_files`` take precedence over the built-in catalog (later files
    over earlier ones).
    """
    if isinstance(cfg.model, ModelSpec):
        return cfg.model
    extra, _ = _extra_catalogs(cfg)
    table = {**model_catalog(), **extra}
    key = cfg.model.strip().lower()
    if key not in table:
        raise ConfigError("model", f"unknown model '{cfg.model}'; known: {', '.join(table)}")
    return table[key]


def resolve_gpu(cfg: SimConfig) -> GPUSpec:
    """The :class:`GPUSpec` of ``cfg.gpu``: inline, or a catalog name (case-insensitive).

    Entries of ``cfg.catalog_files`` take precedence over the built-in catalog.
    """
    if isinstance(cfg.gpu, GPUSpec):
        return cfg.gpu
    _, extra = _extra_catalogs(cfg)
    table = {**gpu_catalog(), **extra}
    key = cfg.gpu.strip().lower()
    if key not in table:
        raise ConfigError("gpu", f"unknown gpu '{cfg.gpu}'; known: {', '.join(table)}")
    return table[key]


def resolve_gpu_name(cfg: SimConfig, name: str) -> GPUSpec:
    """The catalog :class:`GPUSpec` called ``name`` (``cfg.catalog_files`` first)."""
    _, extra = _extra_catalogs(cfg)
    table = {**gpu_catalog(), **extra}
    key = name.strip().lower()
    if key not in table:
        raise ConfigError("cluster.instances", f"unknown gpu '{name}'; known: {', '.join(table)}")
    return table[key]


def config_to_yaml(cfg: SimConfig) -> str:
    """A complete YAML snapshot of ``cfg``; ``load_config`` of it gives an equal config."""
    data = cfg.model_dump(mode="json")
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
