"""A real gRPC client (grpcio) for the end-to-end tests: one call, its outcome printed as
one JSON object: {"code", "details", "responses", "initial", "trailing"} (responses and
metadata as text).

    client.py TARGET METHOD KIND PAYLOAD [KEY=VALUE ...]

KIND is `unary` or `stream`; KEY=VALUE pairs are sent as metadata. Plain-text HTTP/2
(h2c), as gRPC does over an insecure channel.
"""

import json
import sys

import grpc


def text(value):
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def metadata(pairs):
    return {k: text(v) for k, v in (pairs or ())}


def main():
    target, method, kind, payload = sys.argv[1:5]
    sent = tuple(tuple(arg.split("=", 1)) for arg in sys.argv[5:])
    out = {"responses": []}
    with grpc.insecure_channel(target) as channel:
        try:
            if kind == "unary":
                call = channel.unary_unary(method)
                response, info = call.with_call(payload.encode(), metadata=sent, timeout=20)
                out["responses"].append(text(response))
            else:
                info = channel.unary_stream(method)(payload.encode(), metadata=sent, timeout=20)
                for response in info:
                    out["responses"].append(text(response))
            out["code"] = info.code().name
            out["details"] = info.details()
            out["initial"] = metadata(info.initial_metadata())
            out["trailing"] = metadata(info.trailing_metadata())
        except grpc.RpcError as e:
            out["code"] = e.code().name
            out["details"] = e.details()
            out["initial"] = metadata(e.initial_metadata())
            out["trailing"] = metadata(e.trailing_metadata())
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    sys.exit(main())
