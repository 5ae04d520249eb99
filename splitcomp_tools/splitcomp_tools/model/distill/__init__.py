"""`distill`'s library: a learned bottleneck at a bundle's cut, trained by distillation with head and tail frozen.

torch_graph: the tail as a PyTorch module (the gradient route); bottleneck: encoder, decoder, their rate and their
ONNX form; training: the loop; build: the bundles it writes; judge: bytes and agreement on held-out frames.
"""
