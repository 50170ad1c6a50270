"""The job shim: runs user code inside a pipeline pod."""
