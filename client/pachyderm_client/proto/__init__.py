"""The protobuf and gRPC modules generated from the .proto files beside them (`make protos`)."""
