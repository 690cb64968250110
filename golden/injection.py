"""Fast model-level fault injection into the bit-exact integer network.

:class:`InjectionEngine` evaluates many permanent faults (:class:`golden.faults.Fault`)
against a fixed set of images (the test split) and returns, per fault, the faulty int8
logits of every image or directly the outcome classes of
:func:`golden.outcomes.classify`.

How it is fast
--------------
1. The fault-free run is computed once: the input ``x_i``, accumulator ``acc_i`` and
   neuron output ``y_i`` of every layer for every image are cached.
2. Faults are grouped by layer and evaluated in chunks along the batch dimension: a row
   is one (fault, image) pair, so ``F`` faults on ``B`` images are ``F*B`` rows pushed
   through the rest of the network at once (chunks bounded by ``max_elements``, whose
   default keeps a chunk's working set in the CPU caches: larger chunks are slower).
3. Nothing before the faulty layer is recomputed. For an output or accumulator fault
   only the faulty neuron's value is recomputed (from the cached ``y``/``acc``), mapped
   through max-pooling to the single input element of the next layer it reaches, and the
   next layer is updated *incrementally*: ``acc' = wrap(acc + dx * w)`` on the outputs
   that element feeds (exact, since the accumulator wraps modulo 2**32). For a
   convolution this is one gather of a precomputed window of fault-free accumulators
   plus ``dx`` times the element's precomputed influence on that window, laid out so that
   max-pooling is a max over contiguous blocks; the window's cells are compared with
   precomputed fault-free ones before the next input is built. A weight fault
   recomputes only the affected output channel (``acc' = wrap(acc + dw * x)`` over the
   channel's receptive fields).
4. After every layer, rows whose next-layer input equals the fault-free one are dropped:
   their logits are the fault-free logits (a flip masked by ReLU or max-pooling costs
   nothing downstream). Only the remaining rows run the remaining layers densely, in
   float64 (float32 products for linear layers whose partial sums stay below 2**24;
   both exact, see ``_float_step``).

Correction hook (hardened networks)
-----------------------------------
Every layer boundary goes through one injection point: after ``y`` of layer ``i`` is
computed *and the fault applied to it*, the engine calls ``net.correct(i, y)`` if the
network defines it, and feeds ``net.next_input(i, corrected)`` to layer ``i + 1``. A
hardened network (split copies merged by the LCU, triplicated copies reduced by a voter)
implements ``correct(i, y) -> y'`` mapping the raw neuron outputs of layer ``i``
(replicas included, ``[rows, O', ...]``) to the channels its ``next_input`` consumes;
its own ``forward`` must call the same hook, so fault-free and faulty runs correct
identically. The correction must be local: it combines channels at the same position
only, and a network with ``correct`` also defines ``reach(i)``, ``None`` where
``correct(i, ·)`` is the identity, else int64 ``[O', G]``: the corrected channels
(``-1`` padded) a change of each raw channel can alter (a pair for the LCU, the voted
copy for a triple). Step 3 then stays sparse: the engine applies ``correct`` to the
faulty position's raw channels only (``[rows, O']``), takes the ``G`` corrected values
the faulty channel reaches, maps each through max-pooling and updates the next layer
with their ``G`` deltas. The naive engine (:func:`naive_logits`) calls the same hook on
whole layers, so the two engines agree on hardened networks too.

Saturation hook: a network may define ``saturation(i) -> int64 [O]``, the ceiling at
which each output channel of layer ``i`` saturates (a hardened network's split copies
saturate at :data:`golden.numerics.HALF_MAX`); both engines then requantize every value
of layer ``i`` they compute with ``requantize(..., high=saturation(i))``, as its
``layer_step`` does. Without it every channel saturates at
:data:`golden.numerics.INT8_MAX`.

Zero points (imported asymmetric networks): every value is requantized with the layer's
output zero points (:attr:`golden.intmodel.IntLayer.zero_points`, the ReLU clipping at
them) and every convolution pads its input with the layer's ``pad_value``, as
:meth:`golden.intmodel.IntNet.layer_step` does; the incremental updates are unchanged,
since padding is no input a fault can change.
"""

import copy
import dataclasses
from collections import defaultdict

import torch
import torch.nn.functional as F

from .faults import apply_fault_value
from .numerics import ACC_WIDTH, INT8_MAX, WIDTH, requantize, wrap
from .outcomes import classify

__all__ = ["InjectionEngine", "naive_logits"]

_MODEL_CODE = {"bitflip": 0, "stuck0": 1, "stuck1": 2, "crash": 3, "byzantine": 4}


def _channel(layer, t, ndim):
    return t.view(1, -1, *([1] * (ndim - 2)))


def _ceiling(net, i):
    """Per-channel saturation ceilings of layer ``i`` (the saturation hook), int64 [O]."""
    hook = getattr(net, "saturation", None)
    if hook is not None:
        return hook(i)
    return torch.full((net.layers[i].weight.shape[0],), INT8_MAX, dtype=torch.int64)


def _zero_point(layer, channels=None):
    """The layer's output zero points as ``requantize`` takes them: the int 0 of a
    symmetric layer (no per-channel work), else int64 ``[O]`` (or ``[len(channels)]``)."""
    if not isinstance(layer.zero_point, torch.Tensor):
        return int(layer.zero_point)
    zero_points = layer.zero_points
    return zero_points if channels is None else zero_points[channels]


def _pad(layer, x):
    """A conv layer's input padded with its pad value (``layer.padding`` on every side)."""
    p = layer.padding
    return F.pad(x, (p, p, p, p), value=float(layer.pad_value)) if p else x


def _requantize_layer(layer, acc, high):
    zero_point = _zero_point(layer)
    if isinstance(zero_point, torch.Tensor):
        zero_point = _channel(layer, zero_point, acc.dim())
    return requantize(acc, _channel(layer, layer.multiplier, acc.dim()),
                      _channel(layer, layer.shift, acc.dim()), layer.relu,
                      _channel(layer, high, acc.dim()), zero_point)


def _apply_many(values, faults, width):
    """Apply one fault per column: ``values`` ``[B, Fc]``, ``faults`` of length Fc."""
    codes = torch.tensor([_MODEL_CODE[f.model] for f in faults], dtype=torch.int64)
    masks = torch.tensor([sum(1 << b for b in f.bits) for f in faults], dtype=torch.int64)
    forced = torch.tensor([f.value if f.value is not None else 0 for f in faults],
                          dtype=torch.int64)
    unsigned = values & ((1 << width) - 1)
    out = torch.where(codes == 0, unsigned ^ masks,
                      torch.where(codes == 1, unsigned & ~masks, unsigned | masks))
    out = wrap(out, width)
    out = torch.where(codes == 3, torch.zeros_like(out), out)
    return torch.where(codes == 4, forced.expand_as(out), out)


class InjectionEngine:
    """Evaluate many faults on a fixed image set, re-running only what a fault touches.

    Parameters
    ----------
    net : golden.intmodel.IntNet
        The integer network (optionally with a ``correct(i, y)`` hook, see the module
        docstring).
    x : torch.Tensor
        int8 input images (int64 values, already quantized) ``[B, C, H, W]``.
    labels : torch.Tensor, optional
        int64 labels ``[B]`` (needed for the ``correct`` count of :meth:`evaluate`).
    max_elements : int
        Bound on the elements of one chunk's largest activation tensor (memory).
    """

    def __init__(self, net, x, labels=None, *, max_elements=1 << 20):
        self.net = net
        self.x = x
        self.labels = labels
        self.max_elements = max_elements
        self.correct_hook = getattr(net, "correct", None)
        if self.correct_hook is not None and not hasattr(net, "reach"):
            raise TypeError("a network with a correct hook must define reach(i)")
        layers = range(len(net.layers))
        self.reach = [net.reach(i) if self.correct_hook is not None else None for i in layers]
        self.high = [_ceiling(net, i) for i in layers]
        self.batch = x.shape[0]
        self.inputs, self.accs, self.ys, self.corrected = [], [], [], []
        with torch.no_grad():
            h = x
            for i in layers:
                acc, y = net.layer_step(i, h)
                self.inputs.append(h)
                self.accs.append(acc)
                self.ys.append(y)
                self.corrected.append(self._correct(i, y))
                h = net.next_input(i, self.corrected[-1])
        self.logits = h
        self._tables = {}
        self._float_steps = {}
        self._float_inputs = {}
        self.index = {layer.name: i for i, layer in enumerate(net.layers)}

    # -- helpers --------------------------------------------------------------------

    def _correct(self, i, y):
        return self.correct_hook(i, y) if self.reach[i] is not None else y

    def _finish(self, start, x, rows, out, filtered=False):
        """Run layers ``start..`` densely on input rows ``x``, writing logits into ``out``.

        ``rows`` is an int64 ``[R, 2]`` tensor of (fault slot, image); rows whose input
        equals the fault-free input are dropped before each layer (``filtered``: the
        caller already did so for layer ``start``).
        """
        net = self.net
        x = x.double()
        for k in range(start, len(net.layers)):
            if not (filtered and k == start):
                keep = (x != self._inputs_f(k)[rows[:, 1]]).flatten(1).any(1)
                if not bool(keep.all()):
                    x, rows = x[keep], rows[keep]
            if rows.shape[0] == 0:
                return
            step = self._float_step(k)
            if step is not None:
                x = step(x)
            else:
                _, y = net.layer_step(k, x.to(torch.int64))
                x = net.next_input(k, self._correct(k, y)).double()
        out[rows[:, 0], rows[:, 1]] = x.to(torch.int64)

    def _inputs_f(self, k):
        if k not in self._float_inputs:
            self._float_inputs[k] = self.inputs[k].double()
        return self._float_inputs[k]

    def _float_step(self, k):
        """Layer ``k`` plus its correction and pooling in float64, or None when it could
        overflow.

        Exact: every accumulator is an integer below 2**31 in magnitude (checked from the
        weights, so the 32-bit wrap never triggers), ``acc * M + 2**(s-1)`` stays below
        2**48 and scaling by 2**-s then flooring is the arithmetic shift. It computes the
        contract of :func:`golden.numerics.requantize`; the tests check it against the
        naive engine, which calls that function. A linear layer whose partial sums all
        stay below 2**24 (``128 * sum |w|``) multiplies in float32, exact in any summation
        order and twice as fast.
        """
        if k in self._float_steps:
            return self._float_steps[k]
        layer = self.net.layers[k]
        w = layer.weight.double()
        fan = layer.weight.abs().flatten(1).sum(1)
        bound = int((fan * 128 + layer.bias.abs()).max())
        step = None
        if bound < (1 << 31):
            conv = layer.kind == "conv"
            shape = (1, -1, 1, 1) if conv else (1, -1)
            b = layer.bias.double().view(shape)
            m = layer.multiplier.double().view(shape)
            r = ((1 << layer.shift) >> 1).double().view(shape)
            inv = torch.pow(2.0, -layer.shift.double()).view(shape)
            zero_point = layer.zero_points.double().view(shape)
            low = zero_point if layer.relu else torch.full_like(zero_point, -128.0)
            high = self.high[k].double().view(shape)
            single = int(fan.max()) * 128 < (1 << 24)
            wt = None if conv else w.T.contiguous().to(
                torch.float32 if single else torch.float64)

            def step(x):
                if conv:
                    z = F.conv2d(_pad(layer, x), w, stride=layer.stride)
                elif single:
                    z = (x.flatten(1).float() @ wt).double()
                else:
                    z = x.flatten(1) @ wt
                y = torch.floor(((z + b) * m + r) * inv).add_(zero_point)
                y = torch.maximum(y, low, out=y)
                y = torch.minimum(y, high, out=y)
                if self.reach[k] is not None:
                    y = self.correct_hook(k, y)
                if layer.pool:
                    y = F.max_pool2d(y, layer.pool)
                return y.flatten(1) if layer.flatten else y
        self._float_steps[k] = step
        return step

    def _dense_from_output(self, i, y_rows, rows, out):
        """Rows of faulty layer-``i`` outputs ``y_rows`` -> logits in ``out``."""
        x = self.net.next_input(i, self._correct(i, y_rows))
        if i == len(self.net.layers) - 1:
            out[rows[:, 0], rows[:, 1]] = x
            return
        self._finish(i + 1, x, rows, out)

    def _rows(self, slots):
        """All (slot, image) rows for fault slots ``slots``."""
        s = torch.as_tensor(slots, dtype=torch.int64)
        b = torch.arange(self.batch, dtype=torch.int64)
        return torch.stack([s.repeat_interleave(self.batch), b.repeat(len(s))], 1)

    # -- per-target evaluation ------------------------------------------------------

    def _neuron_values(self, i, faults):
        """Faulty value of each fault's neuron for every image: ``[B, Fc]``."""
        layer = self.net.layers[i]
        idx = torch.tensor([f.index for f in faults], dtype=torch.int64)
        if faults[0].target == "output":
            return _apply_many(self.ys[i].flatten(1)[:, idx], faults, WIDTH)
        acc = _apply_many(self.accs[i].flatten(1)[:, idx], faults, ACC_WIDTH)
        per = max(1, layer.neurons // layer.weight.shape[0])
        channel = idx // per
        zero_point = _zero_point(layer, channel)
        if isinstance(zero_point, torch.Tensor):
            zero_point = zero_point.view(1, -1)
        return requantize(acc, layer.multiplier[channel].view(1, -1),
                          layer.shift[channel].view(1, -1), layer.relu,
                          self.high[i][channel].view(1, -1), zero_point)

    def _corrected_values(self, i, idx, values):
        """Corrected outputs a neuron fault alters, at the faulty neuron's position.

        Returns ``(channel, new)``: the corrected channels ``[Fc, G]`` (``-1``: none) and
        their faulty values ``[B, Fc, G]`` (see the correction hook in the module docstring).
        """
        y = self.ys[i]
        B, O = y.shape[0], y.shape[1]
        per = y[0].numel() // O
        ch = idx // per
        reach = self.reach[i]
        if reach is None:
            return ch.view(-1, 1), values.unsqueeze(2)
        Fc = len(idx)
        raw = y.reshape(B, O, per)[:, :, idx % per].transpose(1, 2).contiguous()  # [B,Fc,O]
        raw.scatter_(2, ch.view(1, -1, 1).expand(B, Fc, 1), values.unsqueeze(2))
        fixed = self.correct_hook(i, raw.view(B * Fc, O)).view(B, Fc, -1)
        channel = reach[ch]                                                 # [Fc, G]
        new = fixed.gather(2, channel.clamp(min=0).unsqueeze(0).expand(B, -1, -1))
        return channel, new

    def _neuron_faults_sparse(self, i, faults, slots, out):
        """Output / accumulator faults: only the corrected values the faulty neuron reaches
        are recomputed, mapped through pooling to at most ``G`` elements of the next input,
        and the next layer is updated incrementally from their deltas."""
        net = self.net
        layer = net.layers[i]
        values = self._neuron_values(i, faults)                      # [B, Fc]
        idx = torch.tensor([f.index for f in faults], dtype=torch.int64)
        fslot = torch.as_tensor(slots, dtype=torch.int64)
        last = len(net.layers) - 1
        B, Fc = values.shape
        channel, new = self._corrected_values(i, idx, values)        # [Fc, G], [B, Fc, G]
        G = channel.shape[1]
        valid = channel >= 0
        if i == last:
            logits = self.logits.unsqueeze(0).repeat(Fc, 1, 1)       # [Fc, B, O]
            for g in range(G):
                f = valid[:, g].nonzero().flatten()
                logits[f, :, channel[f, g]] = new[:, f, g].T
            out[fslot] = logits
            return
        # Map each altered corrected neuron through pooling to one element of layer i+1's
        # input; the G elements of a fault share the position (channels differ).
        c = channel.clamp(min=0).reshape(-1)                         # [Fc*G]
        new = new.reshape(B, Fc * G)
        y = self.corrected[i]
        if layer.kind == "conv":
            H, W = y.shape[2], y.shape[3]
            pix = (idx % (H * W)).repeat_interleave(G)
            h, w = pix // W, pix % W
            if layer.pool:
                k = layer.pool
                Hp, Wp = H // k, W // k
                hp, wp = h // k, w // k
                reach = (hp < Hp) & (wp < Wp)
                hp, wp = hp.clamp(max=Hp - 1), wp.clamp(max=Wp - 1)
                d = torch.arange(k)
                hh = (hp * k).view(-1, 1, 1) + d.view(1, -1, 1)
                ww = (wp * k).view(-1, 1, 1) + d.view(1, 1, -1)
                window = y[:, c.view(-1, 1, 1), hh, ww]                    # [B, FG, k, k]
                here = (hh == h.view(-1, 1, 1)) & (ww == w.view(-1, 1, 1))
                window = torch.where(here.unsqueeze(0), new.view(B, -1, 1, 1), window)
                new = window.flatten(2).amax(2)                            # [B, FG]
                pos_c, pos_h, pos_w, Ho, Wo = c, hp, wp, Hp, Wp
            else:
                reach = torch.ones_like(c, dtype=torch.bool)
                pos_c, pos_h, pos_w, Ho, Wo = c, h, w, H, W
            flat = pos_c * (Ho * Wo) + pos_h * Wo + pos_w
        else:
            reach = torch.ones_like(c, dtype=torch.bool)
            flat = pos_c = c
        reach = reach & valid.reshape(-1)
        old = self.inputs[i + 1].flatten(1)[:, flat]                      # [B, FG]
        delta = torch.where(reach.view(1, -1), new - old, 0).view(B, Fc, G)
        b_idx, f_idx = delta.ne(0).any(2).nonzero(as_tuple=True)
        if b_idx.numel() == 0:
            return
        dx = delta[b_idx, f_idx]                                          # [R, G]
        rows_all = torch.stack([fslot[f_idx], b_idx], 1)
        j = i + 1
        nxt = net.layers[j]
        if nxt.kind == "linear":
            q = flat.view(Fc, G)[f_idx]
        else:
            q_c = pos_c.view(Fc, G)[f_idx]
            q_h, q_w = pos_h.view(Fc, G)[f_idx, 0], pos_w.view(Fc, G)[f_idx, 0]
        acc_j = self.accs[j]
        per_row = max(1, acc_j[0].numel())
        step = max(1, self.max_elements // per_row)
        weight = nxt.weight
        for start in range(0, b_idx.numel(), step):
            sl = slice(start, start + step)
            rows = rows_all[sl]
            d = dx[sl]
            if nxt.kind == "linear":
                acc = acc_j[rows[:, 1]] + (weight.T[q[sl]] * d.unsqueeze(2)).sum(1)
            elif j != last:
                x_next, rows = self._conv_window(j, rows, q_c[sl], q_h[sl], q_w[sl], d)
                if rows.shape[0]:
                    self._finish(j + 1, x_next, rows, out, filtered=True)
                continue
            else:
                acc = acc_j[rows[:, 1]].clone()
                for g in range(G):
                    acc = self._conv_delta(nxt, acc, q_c[sl, g], q_h[sl], q_w[sl], d[:, g])
            acc = wrap(acc, ACC_WIDTH)
            self._dense_from_output(j, _requantize_layer(nxt, acc, self.high[j]), rows, out)

    def _conv_window(self, j, rows, ci, h, w, d):
        """Conv layer ``j`` with ``G`` changed input elements per row, all at the spatial
        position ``(h, w)`` (channels ``ci`` ``[R, G]``, deltas ``d`` ``[R, G]``) ->
        layer j+1's input.

        Only a window of outputs around the changed position is recomputed (aligned to
        whole pooling cells when the layer pools): the fault-free window of accumulators
        plus ``d`` times the precomputed influence of each changed input. Rows whose
        window comes out as the fault-free one are dropped; the others get the cached
        fault-free next input with the window's cells replaced.
        """
        t = self._window_tables(j)
        R = rows.shape[0]
        img = rows[:, 1]
        pos = t["start"][h * t["width"] + w]
        safe = t["bound"] + ci.shape[1] * t["delta"] < (1 << (ACC_WIDTH - 1))
        dtype = torch.int32 if safe else torch.int64
        win = t["patches"].index_select(0, img * t["positions"] + pos).to(dtype)
        for g in range(ci.shape[1]):
            win += t["influence"].index_select(0, ci[:, g] * t["plane"] + h * t["width"] + w
                                               ).to(dtype) * d[:, g:g + 1].to(dtype)
        if not safe:
            win = wrap(win, ACC_WIDTH)
        y = self._window_outputs(j, win)
        changed = (y != t["reference"].index_select(0, img * t["positions"] + pos)).any(1)
        if not bool(changed.all()):
            rows, img, pos, y = rows[changed], img[changed], pos[changed], y[changed]
        x_next = t["next"].index_select(0, img)
        x_next.scatter_(1, t["cells"].index_select(0, pos), y)
        x_next = x_next[:, :-1]
        return (x_next if self.net.layers[j].flatten
                else x_next.reshape(-1, *t["next_shape"])), rows

    def _window_outputs(self, j, win):
        """Window accumulators ``[R, k*k*O*ph*pw]`` (pooling offset major) -> the window's
        cells of layer j+1's input, ``[R, C*ph*pw]``."""
        layer = self.net.layers[j]
        t = self._tables[j]
        R, kk, O = win.shape[0], t["kk"], layer.weight.shape[0]
        win = win.view(R, kk, O, -1)
        if self.reach[j] is None:
            # Requantization is monotone per channel, so max-pool the accumulators first
            # and requantize only the pooled cells: pool(requant(acc)) == requant(pool(acc)).
            acc = win.amax(1) if kk > 1 else win[:, 0]
            y = _requantize_layer(layer, acc.to(torch.int64), self.high[j])
        else:
            # The correction mixes channels, so it runs between requantization and pooling.
            y = _requantize_layer(layer, win.transpose(1, 2).to(torch.int64), self.high[j])
            y = self.correct_hook(j, y).amax(2)
        return y.reshape(R, -1)

    def _window_tables(self, j):
        """Precomputed tables of conv layer ``j``'s incremental window (built once).

        ``patches``: the fault-free accumulators of every window ``[B*P, k*k*O*ph*pw]``
        (``P`` window positions, pooling offset major); ``influence``: the change of those
        accumulators per unit change of each input element ``[C_in*H*W, ...]``;
        ``start``: the window position of each input pixel; ``reference``: the window
        cells computed from ``patches``; ``cells``/``next``: where the cells sit in the
        flat next input (invalid cells -> a dummy last column) and that input per image.
        """
        if j in self._tables:
            return self._tables[j]
        layer = self.net.layers[j]
        weight = layer.weight
        O, C_in, K_h, K_w = weight.shape
        acc = self.accs[j]
        B, _, Ho, Wo = acc.shape
        H, W = self.inputs[j].shape[2], self.inputs[j].shape[3]
        s, p, k = layer.stride, layer.padding, layer.pool
        step = k if k else 1

        def span(pos, K):
            lo = (-torch.div(-(pos + p - K + 1), s, rounding_mode="floor")).clamp(min=0)
            n = -(-K // s)
            if k:
                return (lo // k) * k, (-(-(n - 1) // k) + 1) * k
            return lo, n

        bh, sh = span(torch.arange(H), K_h)                                 # per input row
        bw, sw = span(torch.arange(W), K_w)
        nh, nw = -(-Ho // step), -(-Wo // step)
        ph, pw = sh // step, sw // step
        # An input row or column no output reads (a strided convolution's remainder) has
        # no influence; clamp its window into range so the gather stays valid.
        bh, bw = bh.clamp(max=(nh - 1) * step), bw.clamp(max=(nw - 1) * step)
        # Accumulator windows, laid out [k, k, O, ph, pw] so that pooling is a max over
        # the leading k*k blocks.
        accp = F.pad(acc.to(torch.int32),
                     (0, max(0, (nw - 1) * step + sw - Wo), 0, max(0, (nh - 1) * step + sh - Ho)))
        patches = accp.unfold(2, sh, step).unfold(3, sw, step)          # [B,O,nh,nw,sh,sw]
        patches = patches.reshape(B, O, nh, nw, ph, step, pw, step)
        patches = patches.permute(0, 2, 3, 5, 7, 1, 4, 6).reshape(B * nh * nw, -1)
        # Influence of +1 at input (ci, h, w) on every accumulator of its window.
        hh, ww = torch.arange(H).view(-1, 1), torch.arange(W).view(1, -1)
        influence = torch.zeros(C_in, H, W, step, step, O, ph, pw, dtype=torch.int64)
        for kh in range(K_h):
            for kw in range(K_w):
                num_h, num_w = hh + p - kh, ww + p - kw
                lh = torch.div(num_h, s, rounding_mode="floor") - bh.view(-1, 1)
                lw = torch.div(num_w, s, rounding_mode="floor") - bw.view(1, -1)
                ok = ((num_h % s == 0) & (num_h >= 0) & (lh >= 0) & (lh < sh)
                      & (lh + bh.view(-1, 1) < Ho)
                      & (num_w % s == 0) & (num_w >= 0) & (lw >= 0) & (lw < sw)
                      & (lw + bw.view(1, -1) < Wo)).expand(H, W)
                y_, x_ = ok.nonzero(as_tuple=True)
                a, b_ = lh.expand(H, W)[y_, x_], lw.expand(H, W)[y_, x_]
                # Indexed shape [N, C_in, O]: one target per (h, w), so += is exact.
                influence[:, y_, x_, a % step, b_ % step, :, a // step, b_ // step] += \
                    weight[:, :, kh, kw].T.unsqueeze(0)
        self._tables[j] = t = {
            "patches": patches, "positions": nh * nw, "kk": step * step,
            "influence": influence.reshape(C_in * H * W, -1).to(torch.int32),
            "plane": H * W, "width": W,
            "start": ((bh // step).view(-1, 1) * nw + (bw // step).view(1, -1)).reshape(-1),
            "bound": int(acc.abs().max()), "delta": 255 * int(weight.abs().max())}
        # The fault-free cells of every window, through the very same computation.
        t["reference"] = self._window_outputs(j, patches)
        C = t["reference"].shape[1] // (ph * pw)
        Hn, Wn = (Ho // k, Wo // k) if k else (Ho, Wo)
        # Window position (a, b) covers the cells (a + 0..ph-1, b + 0..pw-1).
        ch = torch.arange(nh).view(-1, 1, 1, 1) + torch.arange(ph).view(1, 1, -1, 1)
        cw = torch.arange(nw).view(1, -1, 1, 1) + torch.arange(pw).view(1, 1, 1, -1)
        cell = torch.where((ch < Hn) & (cw < Wn), ch * Wn + cw, C * Hn * Wn)  # [nh,nw,ph,pw]
        offset = (torch.arange(C) * Hn * Wn).view(1, 1, -1, 1, 1)
        cell = torch.where(cell.unsqueeze(2) < C * Hn * Wn, cell.unsqueeze(2) + offset,
                           C * Hn * Wn)
        t["cells"] = cell.reshape(nh * nw, -1)
        nxt = self.inputs[j + 1] if k else self.corrected[j]
        t["next"] = F.pad(nxt.reshape(B, -1), (0, 1))
        t["next_shape"] = (C, Hn, Wn)
        return t

    @staticmethod
    def _conv_delta(layer, acc, ci, h, w, d):
        """Add ``d * weight[:, ci, kh, kw]`` to every output fed by input ``(ci, h, w)``."""
        _, _, kh_n, kw_n = layer.weight.shape
        Ho, Wo = acc.shape[2], acc.shape[3]
        s, p = layer.stride, layer.padding
        r = torch.arange(acc.shape[0])
        for kh in range(kh_n):
            num_h = h + p - kh
            ho = torch.div(num_h, s, rounding_mode="floor")
            ok_h = (num_h % s == 0) & (ho >= 0) & (ho < Ho)
            for kw in range(kw_n):
                num_w = w + p - kw
                wo = torch.div(num_w, s, rounding_mode="floor")
                ok = ok_h & (num_w % s == 0) & (wo >= 0) & (wo < Wo)
                if not bool(ok.any()):
                    continue
                sel = ok.nonzero(as_tuple=True)[0]
                acc[r[sel], :, ho[sel], wo[sel]] += (
                    d[sel].view(-1, 1) * layer.weight[:, ci[sel], kh, kw].T)
        return acc

    def _weight_faults(self, i, faults, slots, out):
        layer = self.net.layers[i]
        x = self.inputs[i]
        y = self.ys[i]
        B = self.batch
        shape = layer.weight.shape
        per_fault = max(1, self.max_elements // max(1, y[0].numel() * B))
        if layer.kind == "conv":
            padded = _pad(layer, x)
        zero_points = layer.zero_points
        for start in range(0, len(faults), per_fault):
            chunk = faults[start:start + per_fault]
            y_rows = y.repeat(len(chunk), *([1] * (y.dim() - 1)))
            for n, fault in enumerate(chunk):
                pos = torch.unravel_index(torch.tensor(fault.index), shape)
                pos = tuple(int(p) for p in pos)
                o = pos[0]
                w_old = layer.weight[pos]
                dw = int(apply_fault_value(w_old, fault)) - int(w_old)
                if dw == 0:
                    continue
                if layer.kind == "conv":
                    # The weight (o, ci, kh, kw) multiplies input (ci, ho*s + kh - p, ...).
                    Ho, Wo = y.shape[2], y.shape[3]
                    s = layer.stride
                    kh, kw = pos[2], pos[3]
                    dz = dw * padded[:, pos[1], kh:kh + s * (Ho - 1) + 1:s,
                                     kw:kw + s * (Wo - 1) + 1:s]
                else:
                    dz = x.flatten(1)[:, pos[1]] * dw
                acc_o = wrap(self.accs[i][:, o] + dz, ACC_WIDTH)
                y_rows[n * B:(n + 1) * B, o] = requantize(
                    acc_o, layer.multiplier[o], layer.shift[o], layer.relu,
                    int(self.high[i][o]), int(zero_points[o]))
            self._dense_from_output(i, y_rows, self._rows(slots[start:start + per_fault]),
                                    out)

    # -- public API -----------------------------------------------------------------

    def run(self, faults):
        """Faulty int8 logits ``[F, B, classes]`` (int64) of every fault on every image."""
        faults = list(faults)
        out = self.logits_ref_expand(len(faults))
        groups = defaultdict(list)
        for slot, fault in enumerate(faults):
            i = fault.validate(self.net)
            groups[(i, fault.target)].append(slot)
        with torch.no_grad():
            for (i, target), slots in sorted(groups.items()):
                group = [faults[s] for s in slots]
                if target == "weight":
                    self._weight_faults(i, group, slots, out)
                else:
                    step = max(1, self.max_elements // max(1, self.batch * 64))
                    for a in range(0, len(group), step):
                        self._neuron_faults_sparse(i, group[a:a + step], slots[a:a + step],
                                                   out)
        return out

    def logits_ref_expand(self, n):
        """``n`` copies of the fault-free logits ``[n, B, classes]``."""
        return self.logits.unsqueeze(0).repeat(n, 1, 1)

    def evaluate(self, faults, chunk=256):
        """Outcome of each fault (:func:`golden.outcomes.classify`), in order.

        Returns
        -------
        list of dict
            Per fault: ``outcome`` (paper 003 class), ``critical`` (paper 004, bool),
            ``changed`` (images whose top-1 changed), ``masked_images``,
            ``tolerable_images``, ``critical_images`` and ``correct`` (faulty top-1
            equals the label; ``None`` without labels).
        """
        faults = list(faults)
        results = []
        scale = self.net.layers[-1].out_scale
        for a in range(0, len(faults), chunk):
            logits = self.run(faults[a:a + chunk])
            results.extend(classify(logits, self.logits, self.labels, scale))
        return results

    def fault_free_correct(self):
        """Images the fault-free network classifies correctly (needs labels)."""
        return int((self.logits.argmax(1) == self.labels).sum())


def naive_logits(net, x, fault):
    """Reference engine: full re-run of the integer network with one fault.

    Every layer is recomputed on every image; the fault is applied right after the
    faulty layer computes (a weight fault on a copy of the layer with the corrupted
    weight, an accumulator fault on ``acc`` followed by the requantization of the whole
    layer, an output fault on ``y``), and ``net.correct(i, y)`` is called after every
    layer if defined, as in :class:`InjectionEngine`.

    Returns
    -------
    torch.Tensor
        int8 logits ``[B, classes]``.
    """
    i = fault.validate(net)
    hook = getattr(net, "correct", None)
    work = net
    if fault.target == "weight":
        layer = net.layers[i]
        weight = layer.weight.clone()
        flat = weight.view(-1)
        flat[fault.index] = apply_fault_value(flat[fault.index], fault)
        work = copy.copy(net)
        work.layers = list(net.layers)
        work.layers[i] = dataclasses.replace(layer, weight=weight)
    h = x
    with torch.no_grad():
        for k in range(len(work.layers)):
            acc, y = work.layer_step(k, h)
            if k == i and fault.target != "weight":
                B = y.shape[0]
                if fault.target == "accumulator":
                    acc = acc.clone()
                    a = acc.view(B, -1)
                    a[:, fault.index] = apply_fault_value(a[:, fault.index], fault)
                    y = _requantize_layer(work.layers[k], acc, _ceiling(work, k))
                else:
                    y = y.clone()
                    v = y.view(B, -1)
                    v[:, fault.index] = apply_fault_value(v[:, fault.index], fault)
            if hook is not None:
                y = hook(k, y)
            h = work.next_input(k, y)
    return h

