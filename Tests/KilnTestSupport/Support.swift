import KilnTensor
