using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Attention.Reference.Kernels;
using Attention.Reference.Ops;
using Attention.Reference.Tensors;

namespace Attention.Reference.Modules;

/// <summary>
/// The float32 fast path of Coordinate Attention: the same equations as <see cref="CoordinateAttention"/>
/// (docs/derivations/ca.md), with the passes over x fused and vectorised (Vector512 / Vector256 where hardware
/// accelerated, <see cref="Vector{T}"/> otherwise, scalar tails).
/// <list type="bullet">
/// <item>Forward: pass 1 reads x once per (n, c) plane and produces both pooled vectors (row sums and column sums,
/// Eq. (ca.1)–(ca.3)); conv1, BatchNorm and h_swish act on the small [N, mip, H+W] tensor; pass 2, per plane, computes
/// that plane's gate rows (conv_h / conv_w and the sigmoid, Eq. (ca.8)–(ca.9)) and writes y (Eq. (ca.10)).</item>
/// <item>Backward: pass 1, per plane, reads g and x once for both gate gradients (Eq. (ca.11)–(ca.12)) and applies
/// the sigmoid derivative (ca.14); the small weight gradients follow; pass 2, per plane, forms that plane's row of
/// ∂y_cat (ca.21) and writes ∂x (ca.13 + ca.22) in one sweep.</item>
/// </list>
/// Parallel loops run over planes or output rows; each output is computed by one thread in a fixed order, so results
/// are bitwise identical for any thread count. Float32 sums are reassociated (vector lanes), so the fast path agrees
/// with the oracle to float32 rounding, not bitwise.
/// </summary>
public static class CoordinateAttentionFast
{
    private const int PlanesPerTask = 16;

    /// <summary>Forward in float32, Eq. (ca.1)–(ca.10).</summary>
    /// <param name="x">The input [N, C, H, W].</param>
    /// <param name="p">The parameters.</param>
    /// <param name="training">BatchNorm mode.</param>
    /// <param name="eps">BatchNorm ε.</param>
    /// <param name="momentum">BatchNorm momentum.</param>
    /// <param name="output">Where to write y (the shape of x, not sharing x's data; every element is overwritten), or null to allocate it.
    /// Reusing a buffer avoids the page faults of a fresh multi-megabyte array on every call.</param>
    public static CoordinateAttentionForward<float> Forward(DenseTensor<float> x, CoordinateAttentionParameters<float> p,
        bool training, double eps = 1e-5, double momentum = 0.1, DenseTensor<float>? output = null)
    {
        var path = SimdWidth.Path; // the one vector-width switch, read once per call
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(p);
        p.Validate();
        ShapeUtil.RequireRank(x, "x", 4, "N, C, H, W");
        int n = x.Dim(0), c = x.Dim(1), h = x.Dim(2), w = x.Dim(3), mip = p.Mip, l = h + w;
        if (c != p.Channels) throw new ShapeMismatchException("x", $"[N, {p.Channels}, H, W] (conv1.weight has {p.Channels} input channels)", x.ShapeArray());
        if (h < 1 || w < 1) throw new ShapeMismatchException("x", "H ≥ 1 and W ≥ 1", x.ShapeArray());
        int planes = n * c, hw = h * w;
        bool wide = Kernels.UseWideRows(w), wideBoth = wide && Kernels.UseWideRows(h), wideL = Kernels.UseWidePositions(l);
        float[] xd = x.Data;

        // Pass 1, Eq. (ca.1)–(ca.3): row sums → x_h, column sums → x_w, both from one read of each plane.
        var yCat = Uninitialized(n, c, l); // every element written by pass 1
        float[] yc = yCat.Data;
        float fw = w, fh = h;
        ForPlanes(planes, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int pl) =>
        {
            ref float xp = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(xd), pl * hw);
            ref float yp = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(yc), pl * l);
            if (wide) { Kernels.PoolPlane512(ref xp, ref yp, h, w); return; }
            ref float colAcc = ref Unsafe.Add(ref yp, h);
            for (int k = 0; k < w; k++) Unsafe.Add(ref colAcc, k) = 0;
            for (int r = 0; r < h; r++)
                Unsafe.Add(ref yp, r) = Kernels.SumAndAccumulate(path, ref Unsafe.Add(ref xp, r * w), ref colAcc, w) / fw;
            for (int k = 0; k < w; k++) Unsafe.Add(ref colAcc, k) /= fh;
        });

        // Eq. (ca.4): f = conv1(y_cat); rows of L positions, one (n, m) row per task.
        var f = new DenseTensor<float>(n, mip, l, 1);
        float[] fd = f.Data, w1 = p.Conv1Weight.Data, b1 = p.Conv1Bias.Data;
        Compute.For(n * mip, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int nm) =>
        {
            int nn = nm / mip, m = nm % mip;
            ref float dst = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(fd), nm * l);
            if (wideL)
            {
                Kernels.Conv1Row512(ref w1[m * c], c, ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(yc), nn * c * l), l, b1[m], ref dst);
                return;
            }
            for (int j = 0; j < l; j++) Unsafe.Add(ref dst, j) = 0;
            for (int i = 0; i < c; i++)
                Kernels.Axpy(path, w1[m * c + i], ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(yc), (nn * c + i) * l), ref dst, l);
            for (int j = 0; j < l; j++) Unsafe.Add(ref dst, j) += b1[m];
        });

        // Eq. (ca.5)–(ca.6): BatchNorm (small: N·mip·L values) and h_swish.
        DenseTensor<float> bn, runningMean, runningVar;
        BatchNormTrainResult<float>? bnTrain = null;
        if (training)
        {
            bnTrain = BatchNorm2d.ForwardTrain(f, p.BnWeight, p.BnBias, p.BnRunningMean, p.BnRunningVar, eps, momentum, "bn1");
            bn = bnTrain.Y.Reshape(n, mip, l);
            runningMean = bnTrain.RunningMean;
            runningVar = bnTrain.RunningVar;
        }
        else
        {
            bn = BatchNorm2d.ForwardEval(f, p.BnWeight, p.BnBias, p.BnRunningMean, p.BnRunningVar, eps, "bn1").Reshape(n, mip, l);
            runningMean = p.BnRunningMean.Clone();
            runningVar = p.BnRunningVar.Clone();
        }
        var act = new DenseTensor<float>(n, mip, l);
        for (int i = 0; i < act.Length; i++) act.Data[i] = Activations.HSwish(bn.Data[i]);

        // Pass 2, Eq. (ca.8)–(ca.10): per plane, the gate rows a_h[n, c, :], a_w[n, c, :], then y = (x·a_w)·a_h.
        var aH = Uninitialized(n, c, h); // every element written by pass 2
        var aW = Uninitialized(n, c, w);
        if (output is not null)
        {
            ShapeUtil.Require(output, "output", x.ShapeArray());
            if (ReferenceEquals(output.Data, x.Data))
                throw new ArgumentException("output must not share x's data: the backward pass reads x, and rows are read after neighbouring stores.", nameof(output));
        }
        var y = output ?? new DenseTensor<float>(GC.AllocateUninitializedArray<float>(x.Length), x.ShapeArray());
        float[] ah = aH.Data, aw = aW.Data, yd = y.Data, ad = act.Data;
        float[] wh = p.ConvHWeight.Data, bh = p.ConvHBias.Data, ww = p.ConvWWeight.Data, bw = p.ConvWBias.Data;
        ForPlanes(planes, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int pl) =>
        {
            int nn = pl / c, ch = pl % c;
            ref float actN = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(ad), nn * mip * l);
            var rowH = ah.AsSpan(pl * h, h);
            var rowW = aw.AsSpan(pl * w, w);
            ref float xp = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(xd), pl * hw);
            ref float yp = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(yd), pl * hw);
            if (wideBoth)
            {
                Kernels.GatesPlane512(ref actN, l, mip, ref wh[ch * mip], bh[ch], ref ww[ch * mip], bw[ch],
                    ref MemoryMarshal.GetReference(rowH), ref MemoryMarshal.GetReference(rowW), h, w);
                Kernels.ScalePlane512(ref xp, ref MemoryMarshal.GetReference(rowW), ref MemoryMarshal.GetReference(rowH), ref yp, h, w);
                return;
            }
            rowH.Fill(0);
            rowW.Fill(0);
            for (int m = 0; m < mip; m++)
            {
                ref float actRow = ref Unsafe.Add(ref actN, m * l);
                Kernels.Axpy(path, wh[ch * mip + m], ref actRow, ref MemoryMarshal.GetReference(rowH), h);
                Kernels.Axpy(path, ww[ch * mip + m], ref Unsafe.Add(ref actRow, h), ref MemoryMarshal.GetReference(rowW), w);
            }
            TensorPrimitives.Add(rowH, bh[ch], rowH);
            TensorPrimitives.Add(rowW, bw[ch], rowW);
            TensorPrimitives.Sigmoid(rowH, rowH);
            TensorPrimitives.Sigmoid(rowW, rowW);
            ref float awr = ref MemoryMarshal.GetReference(rowW);
            if (wide) { Kernels.ScalePlane512(ref xp, ref awr, ref MemoryMarshal.GetReference(rowH), ref yp, h, w); return; }
            for (int r = 0; r < h; r++)
                Kernels.ScaleRow(path, ref Unsafe.Add(ref xp, r * w), ref awr, rowH[r], ref Unsafe.Add(ref yp, r * w), w);
        });

        return new CoordinateAttentionForward<float>
        {
            Y = y, RunningMean = runningMean, RunningVar = runningVar,
            X = x, P = p, Training = training, Eps = eps,
            YCat = yCat, F = f, Bn = bn, Act = act, AH = aH, AW = aW, BnTrain = bnTrain,
        };
    }

    /// <summary>Backward in float32, Eq. (ca.11)–(ca.22).</summary>
    /// <param name="fwd">The forward result (from <see cref="Forward"/> or the oracle in float).</param>
    /// <param name="dy">∂L/∂y [N, C, H, W].</param>
    /// <param name="inputGrad">Where to write ∂L/∂x (the shape of x, sharing no data with x or dy; every element is overwritten), or null to allocate it.</param>
    public static CoordinateAttentionGradients<float> Backward(CoordinateAttentionForward<float> fwd, DenseTensor<float> dy,
        DenseTensor<float>? inputGrad = null)
    {
        var path = SimdWidth.Path; // the one vector-width switch, read once per call
        ArgumentNullException.ThrowIfNull(fwd);
        ArgumentNullException.ThrowIfNull(dy);
        var x = fwd.X;
        var p = fwd.P;
        ShapeUtil.Require(dy, "y.grad", x.ShapeArray());
        int n = x.Dim(0), c = x.Dim(1), h = x.Dim(2), w = x.Dim(3), mip = p.Mip, l = h + w, planes = n * c, hw = h * w;
        bool wide = Kernels.UseWideRows(w), wideL = Kernels.UseWidePositions(l);
        float[] xd = x.Data, gd = dy.Data, ah = fwd.AH.Data, aw = fwd.AW.Data;

        // Pass 1, Eq. (ca.11)–(ca.12) and (ca.14): per plane, t = g·x; da_h[r] = Σ_w t·a_w; da_w += t·a_h[r];
        // then dz = da·(1 − a)·a in place.
        var dzH = Uninitialized(n, c, h); // every element written by pass 1
        var dzW = Uninitialized(n, c, w);
        float[] dzh = dzH.Data, dzw = dzW.Data;
        ForPlanes(planes, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int pl) =>
        {
            ref float gp = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(gd), pl * hw);
            ref float xp = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(xd), pl * hw);
            ref float awr = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(aw), pl * w);
            ref float accW = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(dzw), pl * w);
            if (wide)
            {
                Kernels.GateGradPlane512(ref gp, ref xp, ref awr, ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(ah), pl * h),
                    ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(dzh), pl * h), ref accW, h, w);
            }
            else
            {
                for (int k = 0; k < w; k++) Unsafe.Add(ref accW, k) = 0;
                for (int r = 0; r < h; r++)
                {
                    float a = ah[pl * h + r];
                    float da = Kernels.GateGradRow(path, ref Unsafe.Add(ref gp, r * w), ref Unsafe.Add(ref xp, r * w), ref awr, a, ref accW, w);
                    dzh[pl * h + r] = da * ((1 - a) * a);
                }
            }
            for (int k = 0; k < w; k++)
            {
                float a = Unsafe.Add(ref awr, k);
                Unsafe.Add(ref accW, k) *= (1 - a) * a;
            }
        });

        // Eq. (ca.15)–(ca.17): gate-conv weight/bias gradients and dact = [df_h ; df_w].
        var act = fwd.Act;
        var dact = new DenseTensor<float>(n, mip, l);
        var (dWh, dbh) = wide && Kernels.UseWideRows(h)
            ? GateBackward512(dzH, act, 0, p.ConvHWeight, dact)
            : GateBackward(dzH, act, 0, p.ConvHWeight, dact);
        var (dWw, dbw) = wide
            ? GateBackward512(dzW, act, h, p.ConvWWeight, dact)
            : GateBackward(dzW, act, h, p.ConvWWeight, dact);

        // Eq. (ca.18)–(ca.19): h_swish and BatchNorm backward on the small [N, mip, L] tensor.
        var dbn = new DenseTensor<float>(n, mip, l, 1);
        for (int i = 0; i < dbn.Length; i++) dbn.Data[i] = dact.Data[i] * Activations.HSwishGrad(fwd.Bn.Data[i]);
        var bnGrads = fwd.Training
            ? BatchNorm2d.BackwardTrain(dbn, fwd.F, p.BnWeight, fwd.BnTrain!, true, "bn1")
            : BatchNorm2d.BackwardEval(dbn, fwd.F, p.BnWeight, p.BnRunningMean, p.BnRunningVar, fwd.Eps, true, "bn1");
        float[] df = bnGrads.X.Data;

        // Eq. (ca.20): conv1 weight/bias gradients, one input channel (column of W1) per task.
        float[] yc = fwd.YCat.Data, w1 = p.Conv1Weight.Data;
        var dW1 = new DenseTensor<float>(mip, c);
        var db1 = new DenseTensor<float>(mip);
        for (int m = 0; m < mip; m++)
        {
            float s = 0;
            for (int nn = 0; nn < n; nn++) s += TensorPrimitives.Sum(df.AsSpan((nn * mip + m) * l, l));
            db1.Data[m] = s;
        }
        Compute.For(c, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int i) =>
        {
            for (int m = 0; m < mip; m++)
            {
                float s = 0;
                for (int nn = 0; nn < n; nn++)
                    s += Kernels.Dot(path, ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(df), (nn * mip + m) * l),
                        ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(yc), (nn * c + i) * l), l);
                dW1.Data[m * c + i] = s;
            }
        });

        // Pass 2, Eq. (ca.21)–(ca.22) with (ca.13): per plane, dy_cat[n, c, :] = Σ_m W1[m, c]·df[n, m, :], then
        // dx = (g·a_h)·a_w + dy_cat_h / W + dy_cat_w / H in one sweep.
        if (inputGrad is not null)
        {
            ShapeUtil.Require(inputGrad, "inputGrad", x.ShapeArray());
            if (ReferenceEquals(inputGrad.Data, x.Data) || ReferenceEquals(inputGrad.Data, dy.Data))
                throw new ArgumentException("inputGrad must not share the data of x or y.grad.", nameof(inputGrad));
        }
        var dx = inputGrad ?? new DenseTensor<float>(GC.AllocateUninitializedArray<float>(x.Length), x.ShapeArray());
        float[] dxd = dx.Data;
        float fw = w, fh = h;
        ForPlanes(planes, () => new float[l], [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int pl, float[] row) =>
        {
            int nn = pl / c, ch = pl % c;
            ref float rowRef = ref MemoryMarshal.GetArrayDataReference(row);
            if (wideL)
            {
                Kernels.DyCatRow512(ref w1[ch], c, mip, ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(df), nn * mip * l), l, h, ref rowRef);
            }
            else
            {
                Array.Clear(row);
                for (int m = 0; m < mip; m++)
                    Kernels.Axpy(path, w1[m * c + ch], ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(df), (nn * mip + m) * l), ref rowRef, l);
                for (int j = 0; j < h; j++) row[j] /= fw;
                for (int j = h; j < l; j++) row[j] /= fh;
            }
            ref float gp = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(gd), pl * hw);
            ref float dxp = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(dxd), pl * hw);
            ref float awr = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(aw), pl * w);
            if (wide)
            {
                Kernels.DxPlane512(ref gp, ref awr, ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(ah), pl * h), ref rowRef, ref dxp, h, w);
                return;
            }
            for (int r = 0; r < h; r++)
                Kernels.DxRow(path, ref Unsafe.Add(ref gp, r * w), ref awr, ah[pl * h + r], row[r], ref Unsafe.Add(ref rowRef, h),
                    ref Unsafe.Add(ref dxp, r * w), w);
        });

        return new CoordinateAttentionGradients<float>
        {
            X = dx, Conv1Weight = dW1, Conv1Bias = db1, BnWeight = bnGrads.Weight!, BnBias = bnGrads.Bias!,
            ConvHWeight = dWh, ConvHBias = dbh, ConvWWeight = dWw, ConvWBias = dbw,
        };
    }

    /// <summary>Eq. (ca.15)–(ca.16) for one gate: dW[o, m] = Σ_n dz[n, o, :]·act[n, m, start:], db[o] = Σ dz[·, o, ·], dact rows.</summary>
    private static (DenseTensor<float> dW, DenseTensor<float> db) GateBackward(DenseTensor<float> dz, DenseTensor<float> act, int start,
        DenseTensor<float> weight, DenseTensor<float> dact)
    {
        var path = SimdWidth.Path; // the one vector-width switch, read once per call
        int n = dz.Dim(0), co = dz.Dim(1), count = dz.Dim(2), mip = act.Dim(1), l = act.Dim(2);
        var dW = new DenseTensor<float>(co, mip);
        var db = new DenseTensor<float>(co);
        float[] dzd = dz.Data, ad = act.Data, wd = weight.Data, dad = dact.Data;
        Compute.For((co + PlanesPerTask - 1) / PlanesPerTask, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int task) =>
        {
            int end = Math.Min(co, (task + 1) * PlanesPerTask);
            for (int o = task * PlanesPerTask; o < end; o++)
            {
                float sb = 0;
                for (int nn = 0; nn < n; nn++) sb += TensorPrimitives.Sum(dzd.AsSpan((nn * co + o) * count, count));
                db.Data[o] = sb;
                for (int m = 0; m < mip; m++)
                {
                    float s = 0;
                    for (int nn = 0; nn < n; nn++)
                        s += Kernels.Dot(path, ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(dzd), (nn * co + o) * count),
                            ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(ad), (nn * mip + m) * l + start), count);
                    dW.Data[o * mip + m] = s;
                }
            }
        });
        Compute.For(n * mip, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int nm) =>
        {
            int nn = nm / mip, m = nm % mip;
            ref float dst = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(dad), nm * l + start);
            for (int j = 0; j < count; j++) Unsafe.Add(ref dst, j) = 0;
            for (int o = 0; o < co; o++)
                Kernels.Axpy(path, wd[o * mip + m], ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(dzd), (nn * co + o) * count), ref dst, count);
        });
        return (dW, db);
    }

    /// <summary>
    /// <see cref="GateBackward"/> for a segment of 16 ≤ count ≤ 32 positions: each row of count values is two
    /// overlapping Vector512 (the second masked where it repeats the first in sums).
    /// </summary>
    private static (DenseTensor<float> dW, DenseTensor<float> db) GateBackward512(DenseTensor<float> dz, DenseTensor<float> act, int start,
        DenseTensor<float> weight, DenseTensor<float> dact)
    {
        int n = dz.Dim(0), co = dz.Dim(1), count = dz.Dim(2), mip = act.Dim(1), l = act.Dim(2);
        var dW = new DenseTensor<float>(co, mip);
        var db = new DenseTensor<float>(co);
        float[] dzd = dz.Data, ad = act.Data, wd = weight.Data, dad = dact.Data;
        int off = count - 16;
        Compute.For((co + PlanesPerTask - 1) / PlanesPerTask, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int task) =>
        {
            var mask = Kernels.TailMask(count);
            ref float dz0 = ref MemoryMarshal.GetArrayDataReference(dzd);
            ref float a0 = ref MemoryMarshal.GetArrayDataReference(ad);
            int end = Math.Min(co, (task + 1) * PlanesPerTask);
            for (int o = task * PlanesPerTask; o < end; o++)
            {
                var vb = Vector512<float>.Zero;
                for (int nn = 0; nn < n; nn++)
                {
                    ref float row = ref Unsafe.Add(ref dz0, (nn * co + o) * count);
                    vb += Vector512.LoadUnsafe(ref row) + (Vector512.LoadUnsafe(ref row, (nuint)off) & mask);
                }
                db.Data[o] = Vector512.Sum(vb);
                for (int m = 0; m < mip; m++)
                {
                    var v = Vector512<float>.Zero;
                    for (int nn = 0; nn < n; nn++)
                    {
                        ref float row = ref Unsafe.Add(ref dz0, (nn * co + o) * count);
                        ref float arow = ref Unsafe.Add(ref a0, (nn * mip + m) * l + start);
                        v = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref row), Vector512.LoadUnsafe(ref arow), v);
                        v = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref row, (nuint)off) & mask, Vector512.LoadUnsafe(ref arow, (nuint)off), v);
                    }
                    dW.Data[o * mip + m] = Vector512.Sum(v);
                }
            }
        });
        Compute.For(n * mip, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (int nm) =>
        {
            int nn = nm / mip, m = nm % mip;
            ref float dz0 = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(dzd), nn * co * count);
            var acc0 = Vector512<float>.Zero;
            var acc1 = Vector512<float>.Zero;
            for (int o = 0; o < co; o++)
            {
                var wv = Vector512.Create(wd[o * mip + m]);
                ref float row = ref Unsafe.Add(ref dz0, o * count);
                acc0 = Vector512.FusedMultiplyAdd(wv, Vector512.LoadUnsafe(ref row), acc0);
                acc1 = Vector512.FusedMultiplyAdd(wv, Vector512.LoadUnsafe(ref row, (nuint)off), acc1);
            }
            ref float dst = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(dad), nm * l + start);
            acc0.StoreUnsafe(ref dst);
            acc1.StoreUnsafe(ref dst, (nuint)off);
        });
        return (dW, db);
    }

    /// <summary>A tensor whose elements the caller overwrites entirely (no zeroing pass over the array).</summary>
    private static DenseTensor<float> Uninitialized(params int[] shape) =>
        new(GC.AllocateUninitializedArray<float>(ShapeUtil.Volume(shape)), shape);

    private static void ForPlanes(int planes, Action<int> body) =>
        Compute.For((planes + PlanesPerTask - 1) / PlanesPerTask, task =>
        {
            int end = Math.Min(planes, (task + 1) * PlanesPerTask);
            for (int pl = task * PlanesPerTask; pl < end; pl++) body(pl);
        });

    private static void ForPlanes(int planes, Func<float[]> scratch, Action<int, float[]> body) =>
        Compute.For((planes + PlanesPerTask - 1) / PlanesPerTask, task =>
        {
            var s = scratch();
            int end = Math.Min(planes, (task + 1) * PlanesPerTask);
            for (int pl = task * PlanesPerTask; pl < end; pl++) body(pl, s);
        });

    /// <summary>Row kernels: Vector512 then Vector256 (or Vector&lt;float&gt;) then a scalar tail; fixed lane order.</summary>
    internal static class Kernels
    {
        /// <summary>
        /// Whether rows of <paramref name="w"/> floats take the whole-plane Vector512 kernels: 16 ≤ W ≤ 32, each row
        /// covered by two vectors, at 0 and at W − 16 (overlapping when W &lt; 32). Column-wise results of the overlap
        /// are computed identically by both vectors; row sums mask the overlap out of the second. Depends only on W
        /// and the hardware, never on the thread count.
        /// </summary>
        public static bool UseWideRows(int w) => SimdWidth.Use512 && w >= 16 && w <= 32;

        /// <summary>
        /// Whether rows of L = H + W positions take the four-register Vector512 kernels: 16 ≤ L ≤ 64, vectors at
        /// 0, min(16, L − 16), min(32, L − 16) and L − 16 (repeated or overlapping lanes are computed identically).
        /// </summary>
        public static bool UseWidePositions(int l) => SimdWidth.Use512 && l >= 16 && l <= 64;

        /// <summary>Eq. (ca.4) for one (n, m): dst[l] = Σ_i W1[m, i]·y_cat[n, i, l] + b1[m], the row held in four registers.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Conv1Row512(ref float w1Row, int c, ref float ycN, int l, float bias, ref float dst)
        {
            nuint o1 = (nuint)Math.Min(16, l - 16), o2 = (nuint)Math.Min(32, l - 16), o3 = (nuint)(l - 16);
            var a0 = Vector512<float>.Zero;
            var a1 = Vector512<float>.Zero;
            var a2 = Vector512<float>.Zero;
            var a3 = Vector512<float>.Zero;
            for (int i = 0; i < c; i++)
            {
                var wv = Vector512.Create(Unsafe.Add(ref w1Row, i));
                ref float row = ref Unsafe.Add(ref ycN, i * l);
                a0 = Vector512.FusedMultiplyAdd(wv, Vector512.LoadUnsafe(ref row), a0);
                a1 = Vector512.FusedMultiplyAdd(wv, Vector512.LoadUnsafe(ref row, o1), a1);
                a2 = Vector512.FusedMultiplyAdd(wv, Vector512.LoadUnsafe(ref row, o2), a2);
                a3 = Vector512.FusedMultiplyAdd(wv, Vector512.LoadUnsafe(ref row, o3), a3);
            }
            var vb = Vector512.Create(bias);
            (a0 + vb).StoreUnsafe(ref dst);
            (a1 + vb).StoreUnsafe(ref dst, o1);
            (a2 + vb).StoreUnsafe(ref dst, o2);
            (a3 + vb).StoreUnsafe(ref dst, o3);
        }

        /// <summary>
        /// Eq. (ca.21) and the divisions of (ca.22) for one plane (n, c): row[l] = Σ_m W1[m, c]·df[n, m, l], then divided
        /// by W for l &lt; H and by H for l ≥ H.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void DyCatRow512(ref float w1Col, int c, int mip, ref float dfN, int l, int h, ref float row)
        {
            int o1 = Math.Min(16, l - 16), o2 = Math.Min(32, l - 16), o3 = l - 16;
            var a0 = Vector512<float>.Zero;
            var a1 = Vector512<float>.Zero;
            var a2 = Vector512<float>.Zero;
            var a3 = Vector512<float>.Zero;
            for (int m = 0; m < mip; m++)
            {
                var wv = Vector512.Create(Unsafe.Add(ref w1Col, m * c));
                ref float r = ref Unsafe.Add(ref dfN, m * l);
                a0 = Vector512.FusedMultiplyAdd(wv, Vector512.LoadUnsafe(ref r), a0);
                a1 = Vector512.FusedMultiplyAdd(wv, Vector512.LoadUnsafe(ref r, (nuint)o1), a1);
                a2 = Vector512.FusedMultiplyAdd(wv, Vector512.LoadUnsafe(ref r, (nuint)o2), a2);
                a3 = Vector512.FusedMultiplyAdd(wv, Vector512.LoadUnsafe(ref r, (nuint)o3), a3);
            }
            (a0 / Divisors(0, h, l)).StoreUnsafe(ref row);
            (a1 / Divisors(o1, h, l)).StoreUnsafe(ref row, (nuint)o1);
            (a2 / Divisors(o2, h, l)).StoreUnsafe(ref row, (nuint)o2);
            (a3 / Divisors(o3, h, l)).StoreUnsafe(ref row, (nuint)o3);
        }

        /// <summary>Lane k: W (= L − H) where offset + k &lt; H, else H — the pooled count of position offset + k.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<float> Divisors(int offset, int h, int l) =>
            Vector512.ConditionalSelect(
                Vector512.LessThan(Vector512<int>.Indices + Vector512.Create(offset), Vector512.Create(h)).AsSingle(),
                Vector512.Create((float)(l - h)), Vector512.Create((float)h));

        /// <summary>Lanes of the second (overlapping) vector that are not in the first: lane k counts when k ≥ 32 − W.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal static Vector512<float> TailMask(int w) =>
            Vector512.GreaterThanOrEqual(Vector512<int>.Indices, Vector512.Create(32 - w)).AsSingle();

        /// <summary>
        /// Eq. (ca.8)–(ca.9) for one plane (n, c) when 16 ≤ H, W ≤ 32: z = Σ_m W[c, m]·act[n, m, segment] + b, then
        /// a = 1 / (1 + exp(−z)), both gate rows held in four Vector512 registers.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void GatesPlane512(ref float actN, int l, int mip, ref float whRow, float bh, ref float wwRow, float bw,
            ref float aH, ref float aW, int h, int w)
        {
            var zh0 = Vector512<float>.Zero;
            var zh1 = Vector512<float>.Zero;
            var zw0 = Vector512<float>.Zero;
            var zw1 = Vector512<float>.Zero;
            for (int m = 0; m < mip; m++)
            {
                ref float row = ref Unsafe.Add(ref actN, m * l);
                var a = Vector512.Create(Unsafe.Add(ref whRow, m));
                var b = Vector512.Create(Unsafe.Add(ref wwRow, m));
                zh0 = Vector512.FusedMultiplyAdd(a, Vector512.LoadUnsafe(ref row), zh0);
                zh1 = Vector512.FusedMultiplyAdd(a, Vector512.LoadUnsafe(ref row, (nuint)(h - 16)), zh1);
                zw0 = Vector512.FusedMultiplyAdd(b, Vector512.LoadUnsafe(ref row, (nuint)h), zw0);
                zw1 = Vector512.FusedMultiplyAdd(b, Vector512.LoadUnsafe(ref row, (nuint)(h + w - 16)), zw1);
            }
            var vbh = Vector512.Create(bh);
            var vbw = Vector512.Create(bw);
            Sigmoid(zh0 + vbh).StoreUnsafe(ref aH);
            Sigmoid(zh1 + vbh).StoreUnsafe(ref aH, (nuint)(h - 16));
            Sigmoid(zw0 + vbw).StoreUnsafe(ref aW);
            Sigmoid(zw1 + vbw).StoreUnsafe(ref aW, (nuint)(w - 16));
        }

        /// <summary>Eq. (act.1) on a vector: 1 / (1 + exp(−z)).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<float> Sigmoid(Vector512<float> z) => Vector512<float>.One / (Vector512<float>.One + Vector512.Exp(-z));

        /// <summary>Eq. (ca.1)–(ca.2) for one plane: yp[0..H) = row means, yp[H..H+W) = column means.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void PoolPlane512(ref float xp, ref float yp, int h, int w)
        {
            var mask = TailMask(w);
            var c0 = Vector512<float>.Zero;
            var c1 = Vector512<float>.Zero;
            float fw = w;
            for (int r = 0; r < h; r++)
            {
                var v0 = Vector512.LoadUnsafe(ref xp, (nuint)(r * w));
                var v1 = Vector512.LoadUnsafe(ref xp, (nuint)(r * w + w - 16));
                c0 += v0;
                c1 += v1;
                Unsafe.Add(ref yp, r) = Vector512.Sum(v0 + (v1 & mask)) / fw;
            }
            var fh = Vector512.Create((float)h);
            (c0 / fh).StoreUnsafe(ref yp, (nuint)h);
            (c1 / fh).StoreUnsafe(ref yp, (nuint)(h + w - 16));
        }

        /// <summary>Eq. (ca.10) for one plane: y[r, :] = (x[r, :]·a_w)·a_h[r].</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void ScalePlane512(ref float xp, ref float aw, ref float ah, ref float yp, int h, int w)
        {
            var aw0 = Vector512.LoadUnsafe(ref aw);
            var aw1 = Vector512.LoadUnsafe(ref aw, (nuint)(w - 16));
            for (int r = 0; r < h; r++)
            {
                var a = Vector512.Create(Unsafe.Add(ref ah, r));
                (Vector512.LoadUnsafe(ref xp, (nuint)(r * w)) * aw0 * a).StoreUnsafe(ref yp, (nuint)(r * w));
                (Vector512.LoadUnsafe(ref xp, (nuint)(r * w + w - 16)) * aw1 * a).StoreUnsafe(ref yp, (nuint)(r * w + w - 16));
            }
        }

        /// <summary>
        /// Eq. (ca.11)–(ca.12) and the h-part of (ca.14) for one plane: t = g·x; dz_h[r] = (Σ_w t·a_w)·(1 − a_h)·a_h;
        /// accW = Σ_r t·a_h[r] (the caller applies the sigmoid derivative to accW).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void GateGradPlane512(ref float gp, ref float xp, ref float aw, ref float ah, ref float dzh, ref float accW, int h, int w)
        {
            var mask = TailMask(w);
            var aw0 = Vector512.LoadUnsafe(ref aw);
            var aw1 = Vector512.LoadUnsafe(ref aw, (nuint)(w - 16));
            var c0 = Vector512<float>.Zero;
            var c1 = Vector512<float>.Zero;
            for (int r = 0; r < h; r++)
            {
                float a = Unsafe.Add(ref ah, r);
                var t0 = Vector512.LoadUnsafe(ref gp, (nuint)(r * w)) * Vector512.LoadUnsafe(ref xp, (nuint)(r * w));
                var t1 = Vector512.LoadUnsafe(ref gp, (nuint)(r * w + w - 16)) * Vector512.LoadUnsafe(ref xp, (nuint)(r * w + w - 16));
                var va = Vector512.Create(a);
                c0 = Vector512.FusedMultiplyAdd(t0, va, c0);
                c1 = Vector512.FusedMultiplyAdd(t1, va, c1);
                float da = Vector512.Sum(Vector512.FusedMultiplyAdd(t0, aw0, (t1 * aw1) & mask));
                Unsafe.Add(ref dzh, r) = da * ((1 - a) * a);
            }
            c0.StoreUnsafe(ref accW);
            c1.StoreUnsafe(ref accW, (nuint)(w - 16));
        }

        /// <summary>Eq. (ca.13) + (ca.22) for one plane: dx[r, :] = (g[r, :]·a_h[r])·a_w + (row[r] + row[H + :]).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void DxPlane512(ref float gp, ref float aw, ref float ah, ref float row, ref float dxp, int h, int w)
        {
            var aw0 = Vector512.LoadUnsafe(ref aw);
            var aw1 = Vector512.LoadUnsafe(ref aw, (nuint)(w - 16));
            var cw0 = Vector512.LoadUnsafe(ref row, (nuint)h);
            var cw1 = Vector512.LoadUnsafe(ref row, (nuint)(h + w - 16));
            for (int r = 0; r < h; r++)
            {
                var a = Vector512.Create(Unsafe.Add(ref ah, r));
                var ch = Vector512.Create(Unsafe.Add(ref row, r));
                Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref gp, (nuint)(r * w)) * a, aw0, ch + cw0).StoreUnsafe(ref dxp, (nuint)(r * w));
                Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref gp, (nuint)(r * w + w - 16)) * a, aw1, ch + cw1).StoreUnsafe(ref dxp, (nuint)(r * w + w - 16));
            }
        }

        /// <summary>acc[i] += a·x[i].</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
        public static void Axpy(SimdPath path, float a, ref float x, ref float acc, int len)
        {
            int i = 0;
            if (path == SimdPath.Vector512)
            {
                var va = Vector512.Create(a);
                for (; i <= len - 16; i += 16)
                    Vector512.FusedMultiplyAdd(va, Vector512.LoadUnsafe(ref x, (nuint)i), Vector512.LoadUnsafe(ref acc, (nuint)i)).StoreUnsafe(ref acc, (nuint)i);
            }
            if (SimdWidth.Uses256(path))
            {
                var va = Vector256.Create(a);
                for (; i <= len - 8; i += 8)
                    Vector256.FusedMultiplyAdd(va, Vector256.LoadUnsafe(ref x, (nuint)i), Vector256.LoadUnsafe(ref acc, (nuint)i)).StoreUnsafe(ref acc, (nuint)i);
            }
            else if (Vector.IsHardwareAccelerated)
            {
                var va = new Vector<float>(a);
                for (; i <= len - Vector<float>.Count; i += Vector<float>.Count)
                    Vector.FusedMultiplyAdd(va, Vector.LoadUnsafe(ref x, (nuint)i), Vector.LoadUnsafe(ref acc, (nuint)i)).StoreUnsafe(ref acc, (nuint)i);
            }
            for (; i < len; i++) Unsafe.Add(ref acc, i) = MathF.FusedMultiplyAdd(a, Unsafe.Add(ref x, i), Unsafe.Add(ref acc, i));
        }

        /// <summary>acc[i] += x[i]; returns Σ x[i].</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
        public static float SumAndAccumulate(SimdPath path, ref float x, ref float acc, int len)
        {
            int i = 0;
            float s = 0;
            if (path == SimdPath.Vector512 && len >= 16)
            {
                var vs = Vector512<float>.Zero;
                for (; i <= len - 16; i += 16)
                {
                    var v = Vector512.LoadUnsafe(ref x, (nuint)i);
                    vs += v;
                    (Vector512.LoadUnsafe(ref acc, (nuint)i) + v).StoreUnsafe(ref acc, (nuint)i);
                }
                s += Vector512.Sum(vs);
            }
            if (SimdWidth.Uses256(path) && len - i >= 8)
            {
                var vs = Vector256<float>.Zero;
                for (; i <= len - 8; i += 8)
                {
                    var v = Vector256.LoadUnsafe(ref x, (nuint)i);
                    vs += v;
                    (Vector256.LoadUnsafe(ref acc, (nuint)i) + v).StoreUnsafe(ref acc, (nuint)i);
                }
                s += Vector256.Sum(vs);
            }
            else if (!SimdWidth.Uses256(path) && Vector.IsHardwareAccelerated && len - i >= Vector<float>.Count)
            {
                var vs = Vector<float>.Zero;
                for (; i <= len - Vector<float>.Count; i += Vector<float>.Count)
                {
                    var v = Vector.LoadUnsafe(ref x, (nuint)i);
                    vs += v;
                    (Vector.LoadUnsafe(ref acc, (nuint)i) + v).StoreUnsafe(ref acc, (nuint)i);
                }
                s += Vector.Sum(vs);
            }
            for (; i < len; i++)
            {
                float v = Unsafe.Add(ref x, i);
                s += v;
                Unsafe.Add(ref acc, i) += v;
            }
            return s;
        }

        /// <summary>y[i] = (x[i]·aw[i])·a, Eq. (ca.10).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
        public static void ScaleRow(SimdPath path, ref float x, ref float aw, float a, ref float y, int len)
        {
            int i = 0;
            if (path == SimdPath.Vector512)
            {
                var va = Vector512.Create(a);
                for (; i <= len - 16; i += 16)
                    (Vector512.LoadUnsafe(ref x, (nuint)i) * Vector512.LoadUnsafe(ref aw, (nuint)i) * va).StoreUnsafe(ref y, (nuint)i);
            }
            if (SimdWidth.Uses256(path))
            {
                var va = Vector256.Create(a);
                for (; i <= len - 8; i += 8)
                    (Vector256.LoadUnsafe(ref x, (nuint)i) * Vector256.LoadUnsafe(ref aw, (nuint)i) * va).StoreUnsafe(ref y, (nuint)i);
            }
            else if (Vector.IsHardwareAccelerated)
            {
                var va = new Vector<float>(a);
                for (; i <= len - Vector<float>.Count; i += Vector<float>.Count)
                    (Vector.LoadUnsafe(ref x, (nuint)i) * Vector.LoadUnsafe(ref aw, (nuint)i) * va).StoreUnsafe(ref y, (nuint)i);
            }
            for (; i < len; i++) Unsafe.Add(ref y, i) = Unsafe.Add(ref x, i) * Unsafe.Add(ref aw, i) * a;
        }

        /// <summary>t = g·x; accW[i] += t[i]·a; returns Σ t[i]·aw[i] (Eq. (ca.11)–(ca.12) for one row).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
        public static float GateGradRow(SimdPath path, ref float g, ref float x, ref float aw, float a, ref float accW, int len)
        {
            int i = 0;
            float s = 0;
            if (path == SimdPath.Vector512 && len >= 16)
            {
                var va = Vector512.Create(a);
                var vs = Vector512<float>.Zero;
                for (; i <= len - 16; i += 16)
                {
                    var t = Vector512.LoadUnsafe(ref g, (nuint)i) * Vector512.LoadUnsafe(ref x, (nuint)i);
                    vs = Vector512.FusedMultiplyAdd(t, Vector512.LoadUnsafe(ref aw, (nuint)i), vs);
                    Vector512.FusedMultiplyAdd(t, va, Vector512.LoadUnsafe(ref accW, (nuint)i)).StoreUnsafe(ref accW, (nuint)i);
                }
                s += Vector512.Sum(vs);
            }
            if (SimdWidth.Uses256(path) && len - i >= 8)
            {
                var va = Vector256.Create(a);
                var vs = Vector256<float>.Zero;
                for (; i <= len - 8; i += 8)
                {
                    var t = Vector256.LoadUnsafe(ref g, (nuint)i) * Vector256.LoadUnsafe(ref x, (nuint)i);
                    vs = Vector256.FusedMultiplyAdd(t, Vector256.LoadUnsafe(ref aw, (nuint)i), vs);
                    Vector256.FusedMultiplyAdd(t, va, Vector256.LoadUnsafe(ref accW, (nuint)i)).StoreUnsafe(ref accW, (nuint)i);
                }
                s += Vector256.Sum(vs);
            }
            else if (!SimdWidth.Uses256(path) && Vector.IsHardwareAccelerated && len - i >= Vector<float>.Count)
            {
                var va = new Vector<float>(a);
                var vs = Vector<float>.Zero;
                for (; i <= len - Vector<float>.Count; i += Vector<float>.Count)
                {
                    var t = Vector.LoadUnsafe(ref g, (nuint)i) * Vector.LoadUnsafe(ref x, (nuint)i);
                    vs = Vector.FusedMultiplyAdd(t, Vector.LoadUnsafe(ref aw, (nuint)i), vs);
                    Vector.FusedMultiplyAdd(t, va, Vector.LoadUnsafe(ref accW, (nuint)i)).StoreUnsafe(ref accW, (nuint)i);
                }
                s += Vector.Sum(vs);
            }
            for (; i < len; i++)
            {
                float t = Unsafe.Add(ref g, i) * Unsafe.Add(ref x, i);
                s = MathF.FusedMultiplyAdd(t, Unsafe.Add(ref aw, i), s);
                Unsafe.Add(ref accW, i) = MathF.FusedMultiplyAdd(t, a, Unsafe.Add(ref accW, i));
            }
            return s;
        }

        /// <summary>dx[i] = (g[i]·a)·aw[i] + (ch + cw[i]), Eq. (ca.13) + (ca.22) for one row.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
        public static void DxRow(SimdPath path, ref float g, ref float aw, float a, float ch, ref float cw, ref float dx, int len)
        {
            int i = 0;
            if (path == SimdPath.Vector512)
            {
                var va = Vector512.Create(a);
                var vc = Vector512.Create(ch);
                for (; i <= len - 16; i += 16)
                    Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref g, (nuint)i) * va, Vector512.LoadUnsafe(ref aw, (nuint)i),
                        vc + Vector512.LoadUnsafe(ref cw, (nuint)i)).StoreUnsafe(ref dx, (nuint)i);
            }
            if (SimdWidth.Uses256(path))
            {
                var va = Vector256.Create(a);
                var vc = Vector256.Create(ch);
                for (; i <= len - 8; i += 8)
                    Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref g, (nuint)i) * va, Vector256.LoadUnsafe(ref aw, (nuint)i),
                        vc + Vector256.LoadUnsafe(ref cw, (nuint)i)).StoreUnsafe(ref dx, (nuint)i);
            }
            else if (Vector.IsHardwareAccelerated)
            {
                var va = new Vector<float>(a);
                var vc = new Vector<float>(ch);
                for (; i <= len - Vector<float>.Count; i += Vector<float>.Count)
                    Vector.FusedMultiplyAdd(Vector.LoadUnsafe(ref g, (nuint)i) * va, Vector.LoadUnsafe(ref aw, (nuint)i), vc + Vector.LoadUnsafe(ref cw, (nuint)i)).StoreUnsafe(ref dx, (nuint)i);
            }
            for (; i < len; i++)
                Unsafe.Add(ref dx, i) = MathF.FusedMultiplyAdd(Unsafe.Add(ref g, i) * a, Unsafe.Add(ref aw, i), ch + Unsafe.Add(ref cw, i));
        }

        /// <summary>Σ x[i]·y[i].</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
        public static float Dot(SimdPath path, ref float x, ref float y, int len)
        {
            int i = 0;
            float s = 0;
            if (path == SimdPath.Vector512 && len >= 16)
            {
                var vs = Vector512<float>.Zero;
                for (; i <= len - 16; i += 16)
                    vs = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref x, (nuint)i), Vector512.LoadUnsafe(ref y, (nuint)i), vs);
                s += Vector512.Sum(vs);
            }
            if (SimdWidth.Uses256(path) && len - i >= 8)
            {
                var vs = Vector256<float>.Zero;
                for (; i <= len - 8; i += 8)
                    vs = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref x, (nuint)i), Vector256.LoadUnsafe(ref y, (nuint)i), vs);
                s += Vector256.Sum(vs);
            }
            else if (!SimdWidth.Uses256(path) && Vector.IsHardwareAccelerated && len - i >= Vector<float>.Count)
            {
                var vs = Vector<float>.Zero;
                for (; i <= len - Vector<float>.Count; i += Vector<float>.Count)
                    vs = Vector.FusedMultiplyAdd(Vector.LoadUnsafe(ref x, (nuint)i), Vector.LoadUnsafe(ref y, (nuint)i), vs);
                s += Vector.Sum(vs);
            }
            for (; i < len; i++) s = MathF.FusedMultiplyAdd(Unsafe.Add(ref x, i), Unsafe.Add(ref y, i), s);
            return s;
        }
    }
}
