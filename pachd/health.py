"""health.Health and protoversion.API: liveness and the server's version."""

from __future__ import annotations

import grpc
from google.protobuf import empty_pb2

from pachd import VERSION, VERSION_ADDITIONAL
from pachyderm_client.proto import health_pb2_grpc, protoversion_pb2, protoversion_pb2_grpc

Context = grpc.aio.ServicerContext[object, object]


class HealthService(health_pb2_grpc.HealthServicer):
    async def Health(self, request: empty_pb2.Empty, context: Context) -> empty_pb2.Empty:
        return empty_pb2.Empty()


class VersionService(protoversion_pb2_grpc.APIServicer):
    async def GetVersion(self, request: empty_pb2.Empty, context: Context) -> protoversion_pb2.Version:
        major, minor, micro = VERSION
        return protoversion_pb2.Version(major=major, minor=minor, micro=micro, additional=VERSION_ADDITIONAL)
