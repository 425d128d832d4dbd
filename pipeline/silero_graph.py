"""Silero v6 as a model that scores many calls' windows in one run.

faster-whisper's `silero_vad_v6.onnx` takes `input` [seq_len, 576] and one recurrent state
`h`, `c` [1, 1, 128]: its rows are successive windows of ONE stream (the encoder sees them in
parallel, the LSTM steps through them). One edit makes the rows independent streams: the
Transpose in front of the LSTM turns the encoder's [N, 128, 1] into [seq=1, batch=N, 128]
(perm 2,0,1) instead of [seq=N, batch=1, 128] (perm 0,2,1), and the state inputs and outputs
get a symbolic batch dimension ([1, batch, 128]). The decoder after the LSTM already maps
[1, N, 128] to N probabilities. Nothing else changes; the weights are the same bytes.

The edit is made on the model's protobuf wire format here (no `onnx` package at run time):
`batched_silero(raw)` returns the edited model's bytes, which onnxruntime loads as it loads
the file. Field numbers are onnx.proto's (ModelProto.graph = 7, GraphProto.node = 1,
input = 11, output = 12, value_info = 13; NodeProto.input/output/op_type/attribute =
1/2/4/5; AttributeProto.ints = 8; ValueInfoProto.type = 2; TypeProto.tensor_type = 1;
TypeProto.Tensor.shape = 2; TensorShapeProto.dim = 1; Dimension.dim_param = 2).
"""

from __future__ import annotations

from core.errors import EngineError

Field = tuple[int, int, int | bytes]

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5
STATE_NAMES = (b"h", b"c", b"hn", b"cn")
SERIAL_PERM = (0, 2, 1)
BATCH_PERM = (2, 0, 1)


class NotSileroV6(EngineError, ValueError):
    """The model is not the graph this edit knows (a Transpose into an LSTM, state h/c; a
    `ValueError` too, as it always was)."""


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def _put_varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def parse(buf: bytes) -> list[Field]:
    """A message's fields in order: (number, wire type, int or bytes)."""
    fields: list[Field] = []
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, i = _varint(buf, i)
            fields.append((number, wire, value))
        elif wire == _LEN:
            n, i = _varint(buf, i)
            fields.append((number, wire, buf[i : i + n]))
            i += n
        elif wire in (_FIXED64, _FIXED32):
            n = 8 if wire == _FIXED64 else 4
            fields.append((number, wire, buf[i : i + n]))
            i += n
        else:
            raise NotSileroV6(f"unsupported protobuf wire type {wire}")
    return fields


def emit(fields: list[Field]) -> bytes:
    out = bytearray()
    for number, wire, value in fields:
        out += _put_varint(number << 3 | wire)
        if isinstance(value, int):
            out += _put_varint(value)
        elif wire == _LEN:
            out += _put_varint(len(value)) + value
        else:
            out += value
    return bytes(out)


def _strings(fields: list[Field], number: int) -> list[bytes]:
    return [v for n, w, v in fields if n == number and isinstance(v, bytes)]


def _transpose_perm(node: list[Field]) -> list[Field]:
    """The node with its `perm` attribute (unpacked ints) set to BATCH_PERM."""
    out: list[Field] = []
    for number, wire, value in node:
        if number == 5 and isinstance(value, bytes):
            attr = parse(value)
            if _strings(attr, 1) == [b"perm"]:
                perm = tuple(v for n, w, v in attr if n == 8 and w == _VARINT)
                if perm != SERIAL_PERM:
                    raise NotSileroV6(f"the LSTM's input Transpose has perm {perm}")
                attr = [f for f in attr if f[0] != 8] + [(8, _VARINT, p) for p in BATCH_PERM]
                value = emit(attr)
        out.append((number, wire, value))
    return out


def _batch_dim(value_info: bytes) -> bytes:
    """A [1, 1, 128] state's second dimension made symbolic ("batch")."""
    info = parse(value_info)
    (type_proto,) = _strings(info, 2)
    type_fields = parse(type_proto)
    (tensor,) = _strings(type_fields, 1)
    tensor_fields = parse(tensor)
    (shape,) = _strings(tensor_fields, 2)
    dims = parse(shape)
    if len(dims) != 3:
        raise NotSileroV6("a recurrent state is not [1, 1, 128]")
    dims[1] = (1, _LEN, emit([(2, _LEN, b"batch")]))
    tensor_fields = _replace(tensor_fields, 2, emit(dims))
    type_fields = _replace(type_fields, 1, emit(tensor_fields))
    return emit(_replace(info, 2, emit(type_fields)))


def _replace(fields: list[Field], number: int, value: bytes) -> list[Field]:
    return [(n, w, value if n == number else v) for n, w, v in fields]


def _edit_graph(graph: list[Field]) -> list[Field]:
    nodes = [parse(v) for n, w, v in graph if n == 1 and isinstance(v, bytes)]
    lstm = [nd for nd in nodes if _strings(nd, 4) == [b"LSTM"]]
    if len(lstm) != 1:
        raise NotSileroV6("expected one LSTM")
    lstm_x = _strings(lstm[0], 1)[0]
    out: list[Field] = []
    patched = 0
    for number, wire, value in graph:
        if number == 13:
            continue  # value_info: shapes inferred for the serial graph; onnxruntime re-infers
        if number == 1 and isinstance(value, bytes):
            node = parse(value)
            if _strings(node, 4) == [b"Transpose"] and _strings(node, 2) == [lstm_x]:
                value = emit(_transpose_perm(node))
                patched += 1
        elif number in (11, 12) and isinstance(value, bytes):
            if _strings(parse(value), 1)[0] in STATE_NAMES:
                value = _batch_dim(value)
                patched += 1
        out.append((number, wire, value))
    if patched != 1 + len(STATE_NAMES):
        raise NotSileroV6("expected a Transpose into the LSTM and states h, c, hn, cn")
    return out


def batched_silero(raw: bytes) -> bytes:
    """faster-whisper's Silero v6 ONNX model, edited so that `input` rows are separate
    streams with state [1, batch, 128] (see the module docstring)."""
    model = parse(raw)
    edited = [
        (n, w, emit(_edit_graph(parse(v))) if n == 7 and isinstance(v, bytes) else v)
        for n, w, v in model
    ]
    return emit(edited)
