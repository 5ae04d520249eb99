"""Messages as `ros2 topic echo` prints them (YAML), for tools that run where the ros2 CLI is absent."""

from __future__ import annotations

import array
from typing import Any

import numpy as np


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return f"'{value}'" if value == "" or value.strip() != value or ":" in value else value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _lines(msg: Any, indent: str) -> list[str]:
    out = []
    for name in msg.get_fields_and_field_types():
        value = getattr(msg, name)
        if hasattr(value, "get_fields_and_field_types"):
            out.append(f"{indent}{name}:")
            out.extend(_lines(value, indent + "  "))
        elif isinstance(value, (list, tuple, array.array, np.ndarray, bytes)):
            if len(value) == 0:
                out.append(f"{indent}{name}: []")
                continue
            out.append(f"{indent}{name}:")
            for item in value:
                if hasattr(item, "get_fields_and_field_types"):
                    nested = _lines(item, indent + "  ")
                    nested[0] = f"{indent}- " + nested[0][len(indent) + 2 :]
                    out.extend(nested)
                else:
                    out.append(f"{indent}- {_scalar(item.item() if hasattr(item, 'item') else item)}")
        else:
            out.append(f"{indent}{name}: {_scalar(value)}")
    return out


def message_to_yaml(msg: Any) -> str:
    """The block `ros2 topic echo` shows for one message, with its `---` separator."""
    return "\n".join(_lines(msg, "")) + "\n---"
