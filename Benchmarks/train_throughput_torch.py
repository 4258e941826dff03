"""PyTorch peer of Benchmarks/TrainThroughput: the same two-headed ShuffleNetV2 x0.5 training step.

torchvision's shufflenet_v2_x0_5 backbone up to stage4; each head its own 1x1 conv 192->1024 +
BN + ReLU, global mean pool and Linear(1024, 2); loss = 2*CE(screen) + CE(not_document); SGD
momentum 0.9; random data; batch 32. Prints one line (or JSON with --json) like the Kiln bench.

    python Benchmarks/train_throughput_torch.py --size 256 --threads 2 --steps 10
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torchvision


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        base = torchvision.models.shufflenet_v2_x0_5()
        self.body = nn.Sequential(base.conv1, base.maxpool, base.stage2, base.stage3, base.stage4)

        def head():
            return nn.ModuleDict({
                "conv5": nn.Sequential(nn.Conv2d(192, 1024, 1, bias=False), nn.BatchNorm2d(1024), nn.ReLU(inplace=True)),
                "fc": nn.Linear(1024, 2),
            })

        self.screen = head()
        self.not_document = head()

    def forward(self, x):
        x = self.body(x)
        out = []
        for h in (self.screen, self.not_document):
            out.append(h["fc"](h["conv5"](x).mean([2, 3])))
        return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = TwoHeads().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    ce = nn.CrossEntropyLoss()
    x = torch.rand(a.batch, 3, a.size, a.size) * 2 - 1
    y1 = torch.arange(a.batch) % 2
    y2 = (torch.arange(a.batch) // 2) % 2

    def step():
        opt.zero_grad(set_to_none=True)
        s, n = model(x)
        loss = 2 * ce(s, y1) + ce(n, y2)
        loss.backward()
        opt.step()

    step()  # warm-up
    times = []
    for _ in range(a.steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    times.sort()
    median, best = times[len(times) // 2], times[0]
    rate = a.batch / median
    if a.json:
        print(json.dumps({"framework": "pytorch " + torch.__version__, "size": a.size, "batch": a.batch, "threads": a.threads,
                          "images_per_second": round(rate, 1), "median_step_ms": round(median * 1000, 1),
                          "best_step_ms": round(best * 1000, 1)}))
    else:
        print(f"torch shufflenet_v2_x0_5 {a.size}x{a.size} batch {a.batch} threads {a.threads}: {rate:.1f} img/s "
              f"(median step {median * 1000:.1f} ms, best {best * 1000:.1f} ms; PyTorch {torch.__version__})")


if __name__ == "__main__":
    main()
