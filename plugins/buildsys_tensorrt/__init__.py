"""The TensorRT / TensorRT-RTX engine builder (work in progress: registers nothing yet)."""
