using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Attention.Reference.Ops;
using Attention.Reference.Tensors;

namespace Attention.Reference.Modules;

/// <summary>
/// Reusable per-(n, c) scratch for <see cref="GatedChannelTransformationFast"/>: the forward pass leaves here what the
/// backward pass needs (the embedding, the normaliser, tanh u and the gate). Not thread-safe; one per concurrent call.
/// </summary>
public sealed class GctFastWorkspace
{
    internal int N, C;
    internal double[] S = [], P = [], R = [], Sm = [], K = [], T = [], D = [];
    internal double[] DBeta = [], DGammaTerm = [], DAlphaTerm = [];
    internal float[] Gate = [], Coef = [];

    /// <summary>The batch size and channel count of the last forward pass, or (0, 0).</summary>
    public (int N, int C) Size => (N, C);

    internal void Ensure(int n, int c)
    {
        int nc = n * c;
        if (S.Length < nc)
        {
            S = new double[nc]; P = new double[nc]; R = new double[nc]; Sm = new double[nc]; K = new double[nc]; T = new double[nc];
            DBeta = new double[nc]; DGammaTerm = new double[nc]; DAlphaTerm = new double[nc];
            Gate = new float[nc]; Coef = new float[nc];
        }
        if (D.Length < n) D = new double[n];
        N = n;
        C = c;
    }
}

/// <summary>
/// The fast float32 GCT (docs/derivations/gct.md, "Fast path"): one vectorised pass over x for the per-channel plane
/// sums, the per-channel math in float64 (C·N scalars, negligible), one vectorised pass to scale. The backward mirrors
/// it: one pass for ∂gate = Σ ∂y·x, the per-channel math, one pass for ∂x. <see cref="ForwardBackward"/> fuses the
/// two when ∂y is known up front (as in a case run): two passes over (x, ∂y) in all.
/// </summary>
/// <remarks>
/// Plane sums use four vector accumulators in a fixed order, then a fixed horizontal sum, then the scalar tail in
/// increasing index order; each plane is summed by exactly one thread, and the parameter gradients are summed over n
/// sequentially afterwards, so results are bitwise identical for any <see cref="Compute.MaxThreads"/>.
/// Work is split over samples when there are at least as many samples as threads (the second pass then finds the
/// sample's planes in cache), otherwise over planes.
/// </remarks>
public static class GatedChannelTransformationFast
{
    /// <summary>y = GCT(x), Eqs. (gct.1)–(gct.9), into <paramref name="y"/> (same shape as x, not sharing x's storage).</summary>
    /// <param name="module">The module (float32 parameters).</param>
    /// <param name="x">The input, <c>[N, C, H, W]</c>.</param>
    /// <param name="y">The output, shaped as x.</param>
    /// <param name="workspace">Where the per-channel state for <see cref="Backward"/> is kept (null: a new one).</param>
    /// <returns>The workspace, holding what <see cref="Backward"/> needs.</returns>
    public static GctFastWorkspace Forward(GatedChannelTransformation<float> module, DenseTensor<float> x, DenseTensor<float> y,
        GctFastWorkspace? workspace = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        module.CheckInput(x);
        ArgumentNullException.ThrowIfNull(y);
        ShapeUtil.Require(y, "y", x.ShapeArray());
        RequireDistinct(("x", x), ("y", y));
        var ws = workspace ?? new GctFastWorkspace();
        ws.Ensure(x.Dim(0), module.Channels);
        if (Vector512.IsHardwareAccelerated) Impl<Simd512, Vector512<float>>.Forward(module, x, y, ws);
        else if (Vector256.IsHardwareAccelerated) Impl<Simd256, Vector256<float>>.Forward(module, x, y, ws);
        else Impl<SimdPortable, Vector<float>>.Forward(module, x, y, ws);
        return ws;
    }

    /// <summary>
    /// The backward pass, Eqs. (gct.10)–(gct.20), after <see cref="Forward"/> on the same x with the same workspace:
    /// writes ∂x into <paramref name="dx"/> and returns α, γ, β gradients (<c>[1, C, 1, 1]</c>).
    /// </summary>
    public static GctGradients<float> Backward(GatedChannelTransformation<float> module, DenseTensor<float> x, DenseTensor<float> dy,
        DenseTensor<float> dx, GctFastWorkspace workspace)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(workspace);
        module.CheckInput(x);
        ArgumentNullException.ThrowIfNull(dy);
        ArgumentNullException.ThrowIfNull(dx);
        ShapeUtil.Require(dy, "y.grad", x.ShapeArray());
        ShapeUtil.Require(dx, "x.grad", x.ShapeArray());
        RequireDistinct(("x", x), ("y.grad", dy), ("x.grad", dx));
        if (workspace.Size != (x.Dim(0), module.Channels))
            throw new ArgumentException("The workspace does not hold a forward pass of this input's shape.", nameof(workspace));
        var grads = NewGrads(module.Channels, dx);
        if (Vector512.IsHardwareAccelerated) Impl<Simd512, Vector512<float>>.Backward(module, x, dy, dx, workspace, grads);
        else if (Vector256.IsHardwareAccelerated) Impl<Simd256, Vector256<float>>.Backward(module, x, dy, dx, workspace, grads);
        else Impl<SimdPortable, Vector<float>>.Backward(module, x, dy, dx, workspace, grads);
        return grads;
    }

    /// <summary>
    /// Forward and backward fused: y and ∂x (into <paramref name="y"/>, <paramref name="dx"/>) and the parameter
    /// gradients, in two passes over (x, ∂y). Bitwise equal to <see cref="Forward"/> followed by <see cref="Backward"/>.
    /// </summary>
    public static GctGradients<float> ForwardBackward(GatedChannelTransformation<float> module, DenseTensor<float> x,
        DenseTensor<float> dy, DenseTensor<float> y, DenseTensor<float> dx, GctFastWorkspace? workspace = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        module.CheckInput(x);
        ArgumentNullException.ThrowIfNull(dy);
        ArgumentNullException.ThrowIfNull(y);
        ArgumentNullException.ThrowIfNull(dx);
        ShapeUtil.Require(dy, "y.grad", x.ShapeArray());
        ShapeUtil.Require(y, "y", x.ShapeArray());
        ShapeUtil.Require(dx, "x.grad", x.ShapeArray());
        RequireDistinct(("x", x), ("y.grad", dy), ("y", y), ("x.grad", dx));
        var ws = workspace ?? new GctFastWorkspace();
        ws.Ensure(x.Dim(0), module.Channels);
        var grads = NewGrads(module.Channels, dx);
        if (Vector512.IsHardwareAccelerated) Impl<Simd512, Vector512<float>>.ForwardBackward(module, x, dy, y, dx, ws, grads);
        else if (Vector256.IsHardwareAccelerated) Impl<Simd256, Vector256<float>>.ForwardBackward(module, x, dy, y, dx, ws, grads);
        else Impl<SimdPortable, Vector<float>>.ForwardBackward(module, x, dy, y, dx, ws, grads);
        return grads;
    }

    /// <summary>Runs the portable <see cref="Vector{T}"/> kernels regardless of hardware (for tests).</summary>
    internal static GctGradients<float> ForwardBackwardPortable(GatedChannelTransformation<float> module, DenseTensor<float> x,
        DenseTensor<float> dy, DenseTensor<float> y, DenseTensor<float> dx)
    {
        var ws = new GctFastWorkspace();
        ws.Ensure(x.Dim(0), module.Channels);
        var grads = NewGrads(module.Channels, dx);
        Impl<SimdPortable, Vector<float>>.ForwardBackward(module, x, dy, y, dx, ws, grads);
        return grads;
    }

    /// <summary>Outputs are written while inputs are still read: no two of these tensors may share storage.</summary>
    private static void RequireDistinct(params (string Name, DenseTensor<float> Tensor)[] tensors)
    {
        for (int i = 0; i < tensors.Length; i++)
            for (int j = i + 1; j < tensors.Length; j++)
                if (ReferenceEquals(tensors[i].Tensor.Data, tensors[j].Tensor.Data))
                    throw new ArgumentException($"'{tensors[i].Name}' and '{tensors[j].Name}' share storage; the fast GCT needs distinct tensors.");
    }

    private static GctGradients<float> NewGrads(int c, DenseTensor<float> dx) =>
        new(dx, new DenseTensor<float>(1, c, 1, 1), new DenseTensor<float>(1, c, 1, 1), new DenseTensor<float>(1, c, 1, 1));

    /// <summary>Splits per-plane passes and per-sample math over threads (see the class remarks).</summary>
    private static void Schedule(int n, int c, Action<int> pass1, Action<int> math, Action<int> pass2)
    {
        if (n >= Compute.MaxThreads)
        {
            Compute.For(n, ni =>
            {
                for (int ci = 0; ci < c; ci++) pass1(ni * c + ci);
                math(ni);
                for (int ci = 0; ci < c; ci++) pass2(ni * c + ci);
            });
        }
        else
        {
            Compute.For(n * c, pass1);
            for (int ni = 0; ni < n; ni++) math(ni);
            Compute.For(n * c, pass2);
        }
    }

    private static class Impl<TS, TV> where TS : struct, ISimd<TV> where TV : struct
    {
        public static void Forward(GatedChannelTransformation<float> m, DenseTensor<float> x, DenseTensor<float> y, GctFastWorkspace ws)
        {
            int n = x.Dim(0), c = m.Channels, plane = x.Dim(2) * x.Dim(3);
            float[] xd = x.Data, yd = y.Data;
            GctMode mode = m.Mode;
            bool afterRelu = m.AfterRelu;
            Schedule(n, c,
                nc => ws.S[nc] = PlaneSum(mode, afterRelu, xd, nc * plane, plane),
                ni => ForwardMath(m, ws, ni),
                nc => Scale(xd, yd, nc * plane, plane, ws.Gate[nc]));
        }

        public static void Backward(GatedChannelTransformation<float> m, DenseTensor<float> x, DenseTensor<float> dy, DenseTensor<float> dx,
            GctFastWorkspace ws, GctGradients<float> grads)
        {
            int n = x.Dim(0), c = m.Channels, plane = x.Dim(2) * x.Dim(3);
            float[] xd = x.Data, dyd = dy.Data, dxd = dx.Data;
            GctMode mode = m.Mode;
            bool afterRelu = m.AfterRelu;
            Schedule(n, c,
                nc => ws.P[nc] = Dot(xd, dyd, nc * plane, plane),
                ni => BackwardMath(m, ws, ni),
                nc => GradPass(mode, afterRelu, xd, dyd, null, dxd, nc * plane, plane, ws.Gate[nc], ws.Coef[nc]));
            ReduceParameterGrads(ws, n, c, grads);
        }

        public static void ForwardBackward(GatedChannelTransformation<float> m, DenseTensor<float> x, DenseTensor<float> dy,
            DenseTensor<float> y, DenseTensor<float> dx, GctFastWorkspace ws, GctGradients<float> grads)
        {
            int n = x.Dim(0), c = m.Channels, plane = x.Dim(2) * x.Dim(3);
            float[] xd = x.Data, dyd = dy.Data, yd = y.Data, dxd = dx.Data;
            GctMode mode = m.Mode;
            bool afterRelu = m.AfterRelu;
            Schedule(n, c,
                nc =>
                {
                    // Same accumulation order as the separate passes, so the results are bitwise equal.
                    ws.S[nc] = PlaneSum(mode, afterRelu, xd, nc * plane, plane);
                    ws.P[nc] = Dot(xd, dyd, nc * plane, plane);
                },
                ni => { ForwardMath(m, ws, ni); BackwardMath(m, ws, ni); },
                nc => GradPass(mode, afterRelu, xd, dyd, yd, dxd, nc * plane, plane, ws.Gate[nc], ws.Coef[nc]));
            ReduceParameterGrads(ws, n, c, grads);
        }

        private static double PlaneSum(GctMode mode, bool afterRelu, float[] xd, int start, int len) =>
            mode == GctMode.L2 ? SumSquares(xd, start, len) : afterRelu ? Sum(xd, start, len) : SumAbs(xd, start, len);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static ref float At(float[] a, int i) => ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(a), (nint)i);

        // Eq. (gct.1): Σ x², four accumulators, then a fixed combination, then the tail in increasing order.
        private static double SumSquares(float[] a, int start, int len)
        {
            int w = TS.Count, i = 0;
            TV a0 = TS.Zero, a1 = TS.Zero, a2 = TS.Zero, a3 = TS.Zero;
            for (; i <= len - 4 * w; i += 4 * w)
            {
                TV v0 = TS.Load(ref At(a, start + i)), v1 = TS.Load(ref At(a, start + i + w));
                TV v2 = TS.Load(ref At(a, start + i + 2 * w)), v3 = TS.Load(ref At(a, start + i + 3 * w));
                a0 = TS.Add(a0, TS.Mul(v0, v0)); a1 = TS.Add(a1, TS.Mul(v1, v1));
                a2 = TS.Add(a2, TS.Mul(v2, v2)); a3 = TS.Add(a3, TS.Mul(v3, v3));
            }
            for (; i <= len - w; i += w) { TV v = TS.Load(ref At(a, start + i)); a0 = TS.Add(a0, TS.Mul(v, v)); }
            float sum = TS.Sum(TS.Add(TS.Add(a0, a1), TS.Add(a2, a3)));
            for (; i < len; i++) { float v = a[start + i]; sum += v * v; }
            return sum;
        }

        // Eq. (gct.4): Σ |x|.
        private static double SumAbs(float[] a, int start, int len)
        {
            int w = TS.Count, i = 0;
            TV a0 = TS.Zero, a1 = TS.Zero, a2 = TS.Zero, a3 = TS.Zero;
            for (; i <= len - 4 * w; i += 4 * w)
            {
                a0 = TS.Add(a0, TS.Abs(TS.Load(ref At(a, start + i))));
                a1 = TS.Add(a1, TS.Abs(TS.Load(ref At(a, start + i + w))));
                a2 = TS.Add(a2, TS.Abs(TS.Load(ref At(a, start + i + 2 * w))));
                a3 = TS.Add(a3, TS.Abs(TS.Load(ref At(a, start + i + 3 * w))));
            }
            for (; i <= len - w; i += w) a0 = TS.Add(a0, TS.Abs(TS.Load(ref At(a, start + i))));
            float sum = TS.Sum(TS.Add(TS.Add(a0, a1), TS.Add(a2, a3)));
            for (; i < len; i++) sum += MathF.Abs(a[start + i]);
            return sum;
        }

        // Eq. (gct.4) after a ReLU: Σ x.
        private static double Sum(float[] a, int start, int len)
        {
            int w = TS.Count, i = 0;
            TV a0 = TS.Zero, a1 = TS.Zero, a2 = TS.Zero, a3 = TS.Zero;
            for (; i <= len - 4 * w; i += 4 * w)
            {
                a0 = TS.Add(a0, TS.Load(ref At(a, start + i)));
                a1 = TS.Add(a1, TS.Load(ref At(a, start + i + w)));
                a2 = TS.Add(a2, TS.Load(ref At(a, start + i + 2 * w)));
                a3 = TS.Add(a3, TS.Load(ref At(a, start + i + 3 * w)));
            }
            for (; i <= len - w; i += w) a0 = TS.Add(a0, TS.Load(ref At(a, start + i)));
            float sum = TS.Sum(TS.Add(TS.Add(a0, a1), TS.Add(a2, a3)));
            for (; i < len; i++) sum += a[start + i];
            return sum;
        }

        // Eq. (gct.10): Σ ∂y · x.
        private static double Dot(float[] x, float[] dy, int start, int len)
        {
            int w = TS.Count, i = 0;
            TV a0 = TS.Zero, a1 = TS.Zero, a2 = TS.Zero, a3 = TS.Zero;
            for (; i <= len - 4 * w; i += 4 * w)
            {
                a0 = TS.Add(a0, TS.Mul(TS.Load(ref At(dy, start + i)), TS.Load(ref At(x, start + i))));
                a1 = TS.Add(a1, TS.Mul(TS.Load(ref At(dy, start + i + w)), TS.Load(ref At(x, start + i + w))));
                a2 = TS.Add(a2, TS.Mul(TS.Load(ref At(dy, start + i + 2 * w)), TS.Load(ref At(x, start + i + 2 * w))));
                a3 = TS.Add(a3, TS.Mul(TS.Load(ref At(dy, start + i + 3 * w)), TS.Load(ref At(x, start + i + 3 * w))));
            }
            for (; i <= len - w; i += w) a0 = TS.Add(a0, TS.Mul(TS.Load(ref At(dy, start + i)), TS.Load(ref At(x, start + i))));
            float sum = TS.Sum(TS.Add(TS.Add(a0, a1), TS.Add(a2, a3)));
            for (; i < len; i++) sum += dy[start + i] * x[start + i];
            return sum;
        }

        // Eq. (gct.9): y = x · gate.
        private static void Scale(float[] x, float[] y, int start, int len, float gate)
        {
            int w = TS.Count, i = 0;
            TV g = TS.Broadcast(gate);
            for (; i <= len - w; i += w) TS.Store(TS.Mul(TS.Load(ref At(x, start + i)), g), ref At(y, start + i));
            for (; i < len; i++) y[start + i] = x[start + i] * gate;
        }

        // Eqs. (gct.19), (gct.20): ∂x = ∂y · gate + f(x) · coef, f(x) = x (l2, coef = 2∂S), sgn(x) (l1), 1 (after_relu);
        // and y = x · gate too when y is given (the fused pass).
        private static void GradPass(GctMode mode, bool afterRelu, float[] x, float[] dy, float[]? y, float[] dx, int start, int len,
            float gate, float coef)
        {
            int w = TS.Count, i = 0;
            TV g = TS.Broadcast(gate), cf = TS.Broadcast(coef);
            int kind = mode == GctMode.L2 ? 0 : afterRelu ? 2 : 1;
            if (y is null)
            {
                if (kind == 0)
                    for (; i <= len - w; i += w)
                        TS.Store(TS.Add(TS.Mul(TS.Load(ref At(dy, start + i)), g), TS.Mul(TS.Load(ref At(x, start + i)), cf)), ref At(dx, start + i));
                else if (kind == 1)
                    for (; i <= len - w; i += w)
                        TS.Store(TS.Add(TS.Mul(TS.Load(ref At(dy, start + i)), g), TS.SignTimes(TS.Load(ref At(x, start + i)), cf)), ref At(dx, start + i));
                else
                    for (; i <= len - w; i += w)
                        TS.Store(TS.Add(TS.Mul(TS.Load(ref At(dy, start + i)), g), cf), ref At(dx, start + i));
            }
            else
            {
                if (kind == 0)
                    for (; i <= len - w; i += w)
                    {
                        TV xv = TS.Load(ref At(x, start + i));
                        TS.Store(TS.Mul(xv, g), ref At(y, start + i));
                        TS.Store(TS.Add(TS.Mul(TS.Load(ref At(dy, start + i)), g), TS.Mul(xv, cf)), ref At(dx, start + i));
                    }
                else if (kind == 1)
                    for (; i <= len - w; i += w)
                    {
                        TV xv = TS.Load(ref At(x, start + i));
                        TS.Store(TS.Mul(xv, g), ref At(y, start + i));
                        TS.Store(TS.Add(TS.Mul(TS.Load(ref At(dy, start + i)), g), TS.SignTimes(xv, cf)), ref At(dx, start + i));
                    }
                else
                    for (; i <= len - w; i += w)
                    {
                        TS.Store(TS.Mul(TS.Load(ref At(x, start + i)), g), ref At(y, start + i));
                        TS.Store(TS.Add(TS.Mul(TS.Load(ref At(dy, start + i)), g), cf), ref At(dx, start + i));
                    }
            }
            for (; i < len; i++)
            {
                float xv = x[start + i];
                float f = kind == 0 ? xv : kind == 1 ? Activations.AbsGrad(xv) : 1f;
                if (y is not null) y[start + i] = xv * gate;
                dx[start + i] = dy[start + i] * gate + f * coef;
            }
        }
    }

    // The per-sample math in float64, the same formulas as the oracle.
    private static void ForwardMath(GatedChannelTransformation<float> m, GctFastWorkspace ws, int ni)
    {
        int c = m.Channels;
        double eps = m.Epsilon;
        bool l2 = m.Mode == GctMode.L2;
        float[] alpha = m.Alpha.Data, gamma = m.Gamma.Data, beta = m.Beta.Data;
        double mean = 0;
        for (int ci = 0; ci < c; ci++)
        {
            int nc = ni * c + ci;
            double r = l2 ? Math.Sqrt(ws.S[nc] + eps) : ws.S[nc];   // Eqs. (gct.2), (gct.5)
            double s = r * alpha[ci];
            ws.R[nc] = r;
            ws.Sm[nc] = s;
            mean += l2 ? s * s : Math.Abs(s);
        }
        mean /= c;
        double d = l2 ? Math.Sqrt(mean + eps) : mean + eps;          // Eqs. (gct.3), (gct.6)
        ws.D[ni] = d;
        for (int ci = 0; ci < c; ci++)
        {
            int nc = ni * c + ci;
            double k = gamma[ci] / d;                                 // Eq. (gct.7)
            double t = Math.Tanh(ws.Sm[nc] * k + beta[ci]);          // Eq. (gct.8)
            ws.K[nc] = k;
            ws.T[nc] = t;
            ws.Gate[nc] = (float)(1.0 + t);
        }
    }

    private static void BackwardMath(GatedChannelTransformation<float> m, GctFastWorkspace ws, int ni)
    {
        int c = m.Channels;
        bool l2 = m.Mode == GctMode.L2;
        float[] alpha = m.Alpha.Data, gamma = m.Gamma.Data;
        double d = ws.D[ni], acc = 0;
        for (int ci = 0; ci < c; ci++)
        {
            int nc = ni * c + ci;
            double t = ws.T[nc];
            double du = ws.P[nc] * (1.0 - t * t);                     // Eq. (gct.11)
            double dk = du * ws.Sm[nc];                               // Eq. (gct.13)
            ws.DBeta[nc] = du;
            ws.DGammaTerm[nc] = dk / d;
            acc += dk * gamma[ci];
        }
        double dD = -acc / (d * d);                                   // Eq. (gct.14)
        for (int ci = 0; ci < c; ci++)
        {
            int nc = ni * c + ci;
            double s = ws.Sm[nc];
            double ds = l2
                ? ws.DBeta[nc] * ws.K[nc] + s * (dD / (c * d))        // Eq. (gct.15)
                : ws.DBeta[nc] * ws.K[nc] + Activations.AbsGrad(s) * (dD / c); // Eq. (gct.16)
            ws.DAlphaTerm[nc] = ds * ws.R[nc];
            ws.Coef[nc] = l2
                ? (float)(2.0 * (ds * alpha[ci] / (2.0 * ws.R[nc])))  // Eqs. (gct.17), (gct.19)
                : (float)(ds * alpha[ci]);                            // Eqs. (gct.18), (gct.20)
        }
    }

    private static void ReduceParameterGrads(GctFastWorkspace ws, int n, int c, GctGradients<float> grads)
    {
        for (int ci = 0; ci < c; ci++)
        {
            double a = 0, g = 0, b = 0;
            for (int ni = 0; ni < n; ni++)
            {
                int nc = ni * c + ci;
                a += ws.DAlphaTerm[nc];
                g += ws.DGammaTerm[nc];
                b += ws.DBeta[nc];
            }
            grads.Alpha.Data[ci] = (float)a;
            grads.Gamma.Data[ci] = (float)g;
            grads.Beta.Data[ci] = (float)b;
        }
    }

    private interface ISimd<TV> where TV : struct
    {
        static abstract int Count { get; }
        static abstract TV Zero { get; }
        static abstract TV Load(ref float p);
        static abstract void Store(TV v, ref float p);
        static abstract TV Broadcast(float v);
        static abstract TV Add(TV a, TV b);
        static abstract TV Mul(TV a, TV b);
        static abstract TV Abs(TV a);
        /// <summary>sgn(x) · c with sgn(0) = 0 (and 0 for NaN), as <see cref="Activations.AbsGrad{T}"/>.</summary>
        static abstract TV SignTimes(TV x, TV c);
        static abstract float Sum(TV a);
    }

    private readonly struct Simd512 : ISimd<Vector512<float>>
    {
        public static int Count => Vector512<float>.Count;
        public static Vector512<float> Zero => Vector512<float>.Zero;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(ref float p) => Vector512.LoadUnsafe(ref p);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector512<float> v, ref float p) => v.StoreUnsafe(ref p);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Broadcast(float v) => Vector512.Create(v);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Mul(Vector512<float> a, Vector512<float> b) => a * b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Abs(Vector512<float> a) => Vector512.Abs(a);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> SignTimes(Vector512<float> x, Vector512<float> c) =>
            Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512<float>.Zero), c, Vector512<float>.Zero)
            - Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<float>.Zero), c, Vector512<float>.Zero);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector512<float> a) => Vector512.Sum(a);
    }

    private readonly struct Simd256 : ISimd<Vector256<float>>
    {
        public static int Count => Vector256<float>.Count;
        public static Vector256<float> Zero => Vector256<float>.Zero;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(ref float p) => Vector256.LoadUnsafe(ref p);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector256<float> v, ref float p) => v.StoreUnsafe(ref p);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Broadcast(float v) => Vector256.Create(v);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Mul(Vector256<float> a, Vector256<float> b) => a * b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Abs(Vector256<float> a) => Vector256.Abs(a);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> SignTimes(Vector256<float> x, Vector256<float> c) =>
            Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero), c, Vector256<float>.Zero)
            - Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256<float>.Zero), c, Vector256<float>.Zero);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector256<float> a) => Vector256.Sum(a);
    }

    private readonly struct SimdPortable : ISimd<Vector<float>>
    {
        public static int Count => Vector<float>.Count;
        public static Vector<float> Zero => Vector<float>.Zero;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector<float> Load(ref float p) => Vector.LoadUnsafe(ref p);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector<float> v, ref float p) => v.StoreUnsafe(ref p);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector<float> Broadcast(float v) => new(v);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector<float> Add(Vector<float> a, Vector<float> b) => a + b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector<float> Mul(Vector<float> a, Vector<float> b) => a * b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector<float> Abs(Vector<float> a) => Vector.Abs(a);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector<float> SignTimes(Vector<float> x, Vector<float> c) =>
            Vector.ConditionalSelect(Vector.GreaterThan(x, Vector<float>.Zero), c, Vector<float>.Zero)
            - Vector.ConditionalSelect(Vector.LessThan(x, Vector<float>.Zero), c, Vector<float>.Zero);
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector<float> a) => Vector.Sum(a);
    }
}
