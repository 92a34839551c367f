"""One rewrite of an ONNX graph, done in memory before onnxruntime loads it: lookups in an
int8 table read int8 rows.

The pinned MiniLM stores each weight as int8 `Q` with a float scale `S` and computes the
float table as `Mul(Cast(Q), S)` inside the graph. For the word-embedding table (30,522 x
384, half the model's weights) that means every call casts the whole table to float just
to gather a few hundred rows, and folding it at load keeps a 47 MB float copy resident.
Where the scale is one per row (or one for the table), gathering first is the same
arithmetic on the same values:

    Gather(Mul(Cast(Q), S), ids)  ==  Mul(Cast(Gather(Q, ids)), Gather(S, ids))

so the vectors are bit-for-bit the ones of the original graph.

The graph is read with protobuf (onnxruntime's own dependency) through a minimal schema:
only the fields this rewrite reads are declared, with onnx.proto's field numbers
(https://github.com/onnx/onnx/blob/main/onnx/onnx.proto: ModelProto.graph = 7,
GraphProto.node = 1 / initializer = 5, NodeProto input = 1 / output = 2 / name = 3 /
op_type = 4 / attribute = 5 / domain = 7, AttributeProto name = 1 / i = 3 / type = 20,
TensorProto dims = 1 / name = 8). Every other field is kept as an unknown field and
written back unchanged.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_INT = 2  # AttributeProto.AttributeType.INT
_F = descriptor_pb2.FieldDescriptorProto


@cache
def _model_class() -> Any:
    """The ModelProto message class of the minimal schema."""
    schema = descriptor_pb2.FileDescriptorProto(
        name="avatarbot_onnx_subset.proto", package="avatarbot_onnx", syntax="proto2"
    )

    def message(name: str, *fields: tuple[str, int, int, int, str]) -> None:
        msg = schema.message_type.add(name=name)
        for field, number, kind, label, type_name in fields:
            added = msg.field.add(name=field, number=number, type=kind, label=label)
            if type_name:
                added.type_name = type_name

    one, many = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
    string, int64, sub = _F.TYPE_STRING, _F.TYPE_INT64, _F.TYPE_MESSAGE
    message(
        "AttributeProto",
        ("name", 1, string, one, ""),
        ("i", 3, int64, one, ""),
        ("type", 20, _F.TYPE_INT32, one, ""),  # an enum on the wire is a varint
    )
    message(
        "NodeProto",
        ("input", 1, string, many, ""),
        ("output", 2, string, many, ""),
        ("name", 3, string, one, ""),
        ("op_type", 4, string, one, ""),
        ("attribute", 5, sub, many, ".avatarbot_onnx.AttributeProto"),
        ("domain", 7, string, one, ""),
    )
    message("TensorProto", ("dims", 1, int64, many, ""), ("name", 8, string, one, ""))
    message(
        "GraphProto",
        ("node", 1, sub, many, ".avatarbot_onnx.NodeProto"),
        ("initializer", 5, sub, many, ".avatarbot_onnx.TensorProto"),
    )
    message("ModelProto", ("graph", 7, sub, one, ".avatarbot_onnx.GraphProto"))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(schema)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("avatarbot_onnx.ModelProto"))


def gather_int8_rows(model_bytes: bytes) -> bytes:
    """The model with every `Gather(Mul(Cast(Q), S), ids)` over initializers `Q` and a
    per-row `S` turned into `Mul(Cast(Gather(Q, ids)), Gather(S, ids))` (same values, see
    the module docstring); the model unchanged when nothing matches."""
    model = _model_class().FromString(model_bytes)
    graph = model.graph
    dims = {t.name: list(t.dims) for t in graph.initializer}
    made_by = {out: node for node in graph.node for out in node.output}
    users: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            users[name] = users.get(name, 0) + 1

    def table(name: str) -> tuple[str, str, int] | None:
        """(Q, S, the Cast's target type) when `name` is Mul(Cast(Q), S) of initializers
        with one scale a row (or one for the table)."""
        mul = made_by.get(name)
        if mul is None or mul.op_type != "Mul" or mul.domain or len(mul.input) != 2:
            return None
        cast = made_by.get(mul.input[0])
        scale = mul.input[1]
        if cast is None or cast.op_type != "Cast" or cast.domain:
            return None
        q = cast.input[0]
        if q not in dims or scale not in dims or len(dims[q]) != 2:
            return None
        if dims[scale] not in ([dims[q][0], 1], [1, 1], [1], []):
            return None
        to = next((a.i for a in cast.attribute if a.name == "to"), None)
        return None if to is None else (q, scale, to)

    rewritten: list[Any] = []
    dropped: set[str] = set()
    for node in graph.node:
        found = table(node.input[0]) if node.op_type == "Gather" and not node.domain else None
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        mul = made_by.get(node.input[0])
        if found is None or mul is None or axis != 0:
            rewritten.append(node)
            continue
        if users[mul.output[0]] != 1 or users[mul.input[0]] != 1:
            rewritten.append(node)  # the float table is used elsewhere too: keep it
            continue
        q, scale, to = found
        dropped |= {mul.output[0], mul.input[0]}
        ids, out = node.input[1], node.output[0]
        base = f"{node.name or out}/int8_rows"
        per_row = len(dims[scale]) == 2 and dims[scale][0] == dims[q][0] != 1
        row_scale = f"{base}/scale" if per_row else scale
        steps = [
            ("Gather", [q, ids], f"{base}/q", ("axis", 0)),
            ("Cast", [f"{base}/q"], f"{base}/f", ("to", to)),
            *([("Gather", [scale, ids], row_scale, ("axis", 0))] if per_row else []),
            ("Mul", [f"{base}/f", row_scale], out, None),
        ]
        for op, inputs, output, attribute in steps:
            new = type(node)(op_type=op, name=f"{base}/{op}/{output}", input=inputs)
            new.output.append(output)
            if attribute:
                new.attribute.add(name=attribute[0], i=attribute[1], type=_INT)
            rewritten.append(new)
    if not dropped:
        return model_bytes
    # The Cast and Mul that built the float table now feed nothing: leave them out.
    kept = [n for n in rewritten if not (n.output and n.output[0] in dropped)]
    del graph.node[:]
    graph.node.extend(kept)
    return model.SerializeToString()
