"""Write ONNX metadata_props without the `onnx` package (Debian's is old and PyPI is
unreachable): a protobuf message may carry repeated fields anywhere, so appending
encoded ModelProto.metadata_props entries (field 14) to the file is a valid edit."""


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(num, payload):
    return _varint((num << 3) | 2) + _varint(len(payload)) + payload


def encode_props(props):
    out = b""
    for k, v in props.items():
        entry = _field(1, k.encode()) + _field(2, str(v).encode())
        out += _field(14, entry)
    return out


def add_metadata(path, props):
    with open(path, "ab") as f:
        f.write(encode_props(props))
