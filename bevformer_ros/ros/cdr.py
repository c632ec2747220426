# Copyright 2026 The bevformer_ros Authors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""
Little-endian CDR (XCDR1, what `rclpy.serialization.serialize_message` writes): the encoding rules.

A serialized ROS 2 message is a 4-byte encapsulation header (`00 01 00 00`: plain CDR, little
endian) and the payload, in which every primitive sits at an offset, counted from the payload's
start, that is a multiple of its size (8 at most). Strings are a uint32 length counting a closing
NUL, the UTF-8 bytes and the NUL; sequences a uint32 count and the elements; fixed arrays just the
elements; nested messages their fields in declaration order. Padding bytes are written as zeros.

`write_value` walks any message by its rosidl introspection (`get_fields_and_field_types`): slow,
for the few default-valued fields that `marker_cdr` writes once per alignment and caches.
"""

from __future__ import annotations

import struct
from typing import Any

ENCAPSULATION = b'\x00\x01\x00\x00'  # CDR_LE, options 0
PRIMITIVES = {
    'boolean': struct.Struct('<?'),
    'octet': struct.Struct('<B'),
    'char': struct.Struct('<B'),
    'uint8': struct.Struct('<B'),
    'int8': struct.Struct('<b'),
    'uint16': struct.Struct('<H'),
    'int16': struct.Struct('<h'),
    'uint32': struct.Struct('<I'),
    'int32': struct.Struct('<i'),
    'uint64': struct.Struct('<Q'),
    'int64': struct.Struct('<q'),
    'float': struct.Struct('<f'),
    'double': struct.Struct('<d'),
}
U32 = PRIMITIVES['uint32']
_ZEROS = bytes(8)


class UnsupportedTypeError(ValueError):
    """A field type this writer does not encode (wstring, long double): use rclpy's serializer."""


def align(buf: bytearray, size: int) -> None:
    """Pad `buf` (header included) so that the payload offset is a multiple of `size`."""
    pad = -(len(buf) - len(ENCAPSULATION)) % size
    if pad:
        buf += _ZEROS[:pad]


def string_bytes(text: str) -> bytes:
    """Length-prefixed, NUL-terminated UTF-8: the bytes of a string after its 4-byte alignment."""
    data = text.encode()
    return U32.pack(len(data) + 1) + data + b'\x00'


def write_string(buf: bytearray, text: str) -> None:
    align(buf, 4)
    buf += string_bytes(text)


def write_value(buf: bytearray, type_name: str, value: Any) -> None:
    """
    Append `value` of rosidl type `type_name` ('int32', 'string<=8', 'sequence<pkg/T>', 'T[3]').

    Raises UnsupportedTypeError for types without a plain CDR form here.
    """
    primitive = PRIMITIVES.get(type_name)
    if primitive is not None:
        align(buf, primitive.size)
        buf += primitive.pack(value[0] if isinstance(value, bytes) else value)
    elif type_name == 'string' or type_name.startswith('string<='):
        write_string(buf, value)
    elif type_name.startswith('sequence<'):
        element = type_name.removeprefix('sequence<')[:-1].split(',')[0].strip()
        align(buf, 4)
        buf += U32.pack(len(value))
        for item in value:
            write_value(buf, element, item)
    elif type_name.endswith(']'):
        element = type_name[: type_name.index('[')]
        for item in value:
            write_value(buf, element, item)
    elif '/' in type_name:
        for field, field_type in value.get_fields_and_field_types().items():
            write_value(buf, field_type, getattr(value, field))
    else:
        raise UnsupportedTypeError(f'no CDR encoding here for field type {type_name!r}')
