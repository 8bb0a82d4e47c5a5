#!/usr/bin/env python3
"""PyTorch reference of the `vision` crate's network, for the ratios printed by
`cargo bench -p vision` (crates/vision/benches/vision.rs runs this when torch imports).

The architecture mirrors crates/vision/src/unet.rs layer for layer: per level `convs_per_level`
3x3x3 convolutions with GroupNorm (group size from the config) and SiLU, phi mixing as a 1x1x1
convolution plus a per-stream bias from Linear(phi), stream attention (with the exact one-stream
shortcut f(V a) + a), max-pool x2 down, trilinear x2 up (align_corners=False), skip
concatenation, a 1-channel 1x1x1 head with sigmoid, and the embedding: global max, then linear.

Prints one JSON object per line:
  {"config": "small", "size": 64, "forward_s": ..., "forward_backward_s": ..., "threads": 2}
With --fullres X Y Z it times one no-grad forward pass of that size instead and reports the
process's peak resident memory.
"""

import argparse
import json
import resource
import time
import tomllib

import torch
import torch.nn as nn
import torch.nn.functional as F


class PhiMixing(nn.Module):
    def __init__(self, channels, phi_dim):
        super().__init__()
        self.features = nn.Conv3d(channels, channels, 1, bias=False)
        self.phi = nn.Linear(phi_dim, channels)

    def forward(self, a, phi):
        bias = self.phi(phi)[:, :, None, None, None]
        return F.silu(self.features(a) + bias)


class StreamAttention(nn.Module):
    def __init__(self, channels, width):
        super().__init__()
        self.q = nn.Conv3d(channels, width, 1)
        self.k = nn.Conv3d(channels, width, 1)
        self.v = nn.Conv3d(channels, width, 1)
        self.f = nn.Conv3d(width, channels, 1)
        self.width = width

    def forward(self, a):
        streams = a.shape[0]
        v = self.v(a)
        if streams == 1:
            return self.f(v) + a
        q = self.q(a).flatten(2).permute(2, 0, 1)  # [V, S, b]
        k = self.k(a).flatten(2).permute(2, 0, 1)
        vv = v.flatten(2).permute(2, 0, 1)
        weights = torch.softmax(q @ k.transpose(1, 2) / self.width**0.5, dim=-1)
        mixed = (weights @ vv).permute(1, 2, 0).reshape(v.shape)
        return self.f(mixed) + a


class Block(nn.Module):
    def __init__(self, c_in, c_out, cfg):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv3d(c_in if i == 0 else c_out, c_out, 3, padding=1)
            for i in range(cfg["convs_per_level"])
        )
        self.norms = nn.ModuleList(
            nn.GroupNorm(c_out // cfg["group_size"], c_out)
            for _ in range(cfg["convs_per_level"])
        )
        self.mixing = PhiMixing(c_out, cfg["phi_dim"])
        self.attention = StreamAttention(c_out, cfg["attention_width"])

    def forward(self, x, phi):
        for conv, norm in zip(self.convs, self.norms):
            x = F.silu(norm(conv(x)))
        return self.attention(self.mixing(x, phi))


class Unet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        levels = cfg["levels"]
        ch = [cfg["channels_top"]] + [cfg["channels_below"]] * (levels - 1)
        self.encoder = nn.ModuleList(
            Block(1 if l == 0 else ch[l - 1], ch[l], cfg) for l in range(levels)
        )
        self.decoder = nn.ModuleList(
            Block(ch[l + 1] + ch[l], ch[l], cfg) for l in range(levels - 1)
        )
        self.head = nn.Conv3d(ch[0], 1, 1)
        self.embedding = nn.Linear(ch[-1], cfg["embedding_dim"])

    def forward(self, x, phi):
        features = []
        for level, block in enumerate(self.encoder):
            if level > 0:
                x = F.max_pool3d(x, 2)
            x = block(x, phi)
            features.append(x)
        embedding = self.embedding(torch.amax(features[-1], dim=(2, 3, 4)))
        x = features[-1]
        for level in range(len(self.decoder) - 1, -1, -1):
            up = F.interpolate(x, scale_factor=2, mode="trilinear", align_corners=False)
            x = self.decoder[level](torch.cat([up, features[level]], dim=1), phi)
        return torch.sigmoid(self.head(x)), embedding


def best_time(fn, reps):
    fn()  # warm-up (allocator, kernel selection)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="configs/vision/<name>.toml")
    parser.add_argument("--size", type=int, nargs="+", default=[64])
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--fullres", type=int, nargs=3, metavar=("X", "Y", "Z"))
    args = parser.parse_args()
    with open(args.config, "rb") as f:
        cfg = tomllib.load(f)
    torch.manual_seed(1)
    net = Unet(cfg)
    phi = torch.randn(args.streams, cfg["phi_dim"])

    if args.fullres:
        multiple = 2 ** (cfg["levels"] - 1)
        padded = [-(-s // multiple) * multiple for s in args.fullres]
        x = torch.rand(args.streams, 1, *padded)
        with torch.no_grad():
            start = time.perf_counter()
            net(x, phi)
            seconds = time.perf_counter() - start
        peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(json.dumps({"config": cfg["name"], "fullres": padded, "forward_s": seconds,
                          "peak_rss_gib": peak_gib, "threads": torch.get_num_threads()}))
        return

    for size in args.size:
        x = torch.rand(args.streams, 1, size, size, size)

        def forward():
            with torch.no_grad():
                net(x, phi)

        def forward_backward():
            net.zero_grad(set_to_none=True)
            probabilities, embedding = net(x, phi)
            loss = probabilities.mean() + 1e-3 * embedding.square().mean()
            loss.backward()

        print(json.dumps({
            "config": cfg["name"], "size": size,
            "forward_s": best_time(forward, args.reps),
            "forward_backward_s": best_time(forward_backward, args.reps),
            "threads": torch.get_num_threads(),
        }), flush=True)


if __name__ == "__main__":
    main()
