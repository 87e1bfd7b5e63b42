"""A real gRPC server (grpcio) for the end-to-end tests, without generated code: messages
are raw bytes. Listens on 127.0.0.1 (port 0: the OS picks), prints `PORT <n>` once
serving, and runs until killed.

Methods of service `tollgate.test.Echo`:
- Unary: answers `echo:` + the request; initial metadata `x-initial: i1`, trailing
  metadata `x-trailer: t1`, and `x-seen-key` with the `x-api-key` it received (or `-`).
- Stream: the request is a count N; answers N messages `msg 0` .. `msg N-1`, then the
  trailer `x-trailer: done`.
- Fail: ends with FAILED_PRECONDITION, details `bad thing`, trailer `x-why: because`.
"""

import sys
from concurrent import futures

import grpc


def unary(request, context):
    key = dict(context.invocation_metadata()).get("x-api-key", "-")
    context.send_initial_metadata((("x-initial", "i1"),))
    context.set_trailing_metadata((("x-trailer", "t1"), ("x-seen-key", key)))
    return b"echo:" + request


def stream(request, context):
    for i in range(int(request.decode() or "0")):
        yield f"msg {i}".encode()
    context.set_trailing_metadata((("x-trailer", "done"),))


def fail(request, context):
    context.set_trailing_metadata((("x-why", "because"),))
    context.abort(grpc.StatusCode.FAILED_PRECONDITION, "bad thing")


def main():
    handler = grpc.method_handlers_generic_handler(
        "tollgate.test.Echo",
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "Stream": grpc.unary_stream_rpc_method_handler(stream),
            "Fail": grpc.unary_unary_rpc_method_handler(fail),
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"PORT {port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    sys.exit(main())
