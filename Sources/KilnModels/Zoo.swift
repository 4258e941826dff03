import KilnGraph
