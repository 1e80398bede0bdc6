using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Attention.Reference.Kernels;
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
        if (!y.HasShape(x.Shape)) ShapeUtil.Require(y, "y", x.ShapeArray()); // (the shape array only to report)
        if (ReferenceEquals(x.Data, y.Data)) RequireDistinct(("x", x), ("y", y));
        var ws = workspace ?? new GctFastWorkspace();
        ws.Ensure(x.Dim(0), module.Channels);
        switch (SimdWidth.Path)
        {
            case SimdPath.Vector512: Impl<Simd512<float>>.Forward(module, x, y, ws); break;
            case SimdPath.Vector256 when Vector256.IsHardwareAccelerated: Impl<Simd256<float>>.Forward(module, x, y, ws); break;
            default: Impl<SimdPortable<float>>.Forward(module, x, y, ws); break;
        }
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
        switch (SimdWidth.Path)
        {
            case SimdPath.Vector512: Impl<Simd512<float>>.Backward(module, x, dy, dx, workspace, grads); break;
            case SimdPath.Vector256 when Vector256.IsHardwareAccelerated: Impl<Simd256<float>>.Backward(module, x, dy, dx, workspace, grads); break;
            default: Impl<SimdPortable<float>>.Backward(module, x, dy, dx, workspace, grads); break;
        }
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
        switch (SimdWidth.Path)
        {
            case SimdPath.Vector512: Impl<Simd512<float>>.ForwardBackward(module, x, dy, y, dx, ws, grads); break;
            case SimdPath.Vector256 when Vector256.IsHardwareAccelerated: Impl<Simd256<float>>.ForwardBackward(module, x, dy, y, dx, ws, grads); break;
            default: Impl<SimdPortable<float>>.ForwardBackward(module, x, dy, y, dx, ws, grads); break;
        }
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

    private static class Impl<TV> where TV : unmanaged, ISimd<TV, float>
    {
        public static void Forward(GatedChannelTransformation<float> m, DenseTensor<float> x, DenseTensor<float> y, GctFastWorkspace ws)
        {
            // Struct loop bodies (Schedule's split, no closures): an inference plan's forward allocates nothing.
            int n = x.Dim(0), c = m.Channels;
            var f = new ForwardPlanes { M = m, Ws = ws, X = x.Data, Y = y.Data, C = c, Plane = x.Dim(2) * x.Dim(3) };
            if (n >= Compute.MaxThreads) Compute.For(n, f with { Step = ForwardStep.Sample });
            else
            {
                Compute.For(n * c, f with { Step = ForwardStep.Sums });
                for (int ni = 0; ni < n; ni++) ForwardMath(m, ws, ni);
                Compute.For(n * c, f with { Step = ForwardStep.Scale });
            }
        }

        private enum ForwardStep { Sums, Scale, Sample }

        /// <summary>The forward's passes as one struct body: a plane's sum, a plane's scale, or a whole sample.</summary>
        private struct ForwardPlanes : IForBody
        {
            public GatedChannelTransformation<float> M;
            public GctFastWorkspace Ws;
            public float[] X, Y;
            public int C, Plane;
            public ForwardStep Step;

            [MethodImpl(MethodImplOptions.AggressiveOptimization)]
            public readonly void Invoke(int i)
            {
                switch (Step)
                {
                    case ForwardStep.Sums: Ws.S[i] = PlaneSum(M.Mode, M.AfterRelu, X, i * Plane, Plane); break;
                    case ForwardStep.Scale: Scale(X, Y, i * Plane, Plane, Ws.Gate[i]); break;
                    default:
                        for (int ci = 0; ci < C; ci++) Ws.S[i * C + ci] = PlaneSum(M.Mode, M.AfterRelu, X, (i * C + ci) * Plane, Plane);
                        ForwardMath(M, Ws, i);
                        for (int ci = 0; ci < C; ci++) Scale(X, Y, (i * C + ci) * Plane, Plane, Ws.Gate[i * C + ci]);
                        break;
                }
            }
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
            int w = TV.Count, i = 0;
            TV a0 = TV.Zero, a1 = TV.Zero, a2 = TV.Zero, a3 = TV.Zero;
            for (; i <= len - 4 * w; i += 4 * w)
            {
                TV v0 = TV.Load(ref At(a, start + i), 0), v1 = TV.Load(ref At(a, start + i + w), 0);
                TV v2 = TV.Load(ref At(a, start + i + 2 * w), 0), v3 = TV.Load(ref At(a, start + i + 3 * w), 0);
                a0 = TV.Add(a0, TV.Multiply(v0, v0)); a1 = TV.Add(a1, TV.Multiply(v1, v1));
                a2 = TV.Add(a2, TV.Multiply(v2, v2)); a3 = TV.Add(a3, TV.Multiply(v3, v3));
            }
            for (; i <= len - w; i += w) { TV v = TV.Load(ref At(a, start + i), 0); a0 = TV.Add(a0, TV.Multiply(v, v)); }
            float sum = TV.Sum(TV.Add(TV.Add(a0, a1), TV.Add(a2, a3)));
            for (; i < len; i++) { float v = a[start + i]; sum += v * v; }
            return sum;
        }

        // Eq. (gct.4): Σ |x|.
        private static double SumAbs(float[] a, int start, int len)
        {
            int w = TV.Count, i = 0;
            TV a0 = TV.Zero, a1 = TV.Zero, a2 = TV.Zero, a3 = TV.Zero;
            for (; i <= len - 4 * w; i += 4 * w)
            {
                a0 = TV.Add(a0, TV.Abs(TV.Load(ref At(a, start + i), 0)));
                a1 = TV.Add(a1, TV.Abs(TV.Load(ref At(a, start + i + w), 0)));
                a2 = TV.Add(a2, TV.Abs(TV.Load(ref At(a, start + i + 2 * w), 0)));
                a3 = TV.Add(a3, TV.Abs(TV.Load(ref At(a, start + i + 3 * w), 0)));
            }
            for (; i <= len - w; i += w) a0 = TV.Add(a0, TV.Abs(TV.Load(ref At(a, start + i), 0)));
            float sum = TV.Sum(TV.Add(TV.Add(a0, a1), TV.Add(a2, a3)));
            for (; i < len; i++) sum += MathF.Abs(a[start + i]);
            return sum;
        }

        // Eq. (gct.4) after a ReLU: Σ x.
        private static double Sum(float[] a, int start, int len)
        {
            int w = TV.Count, i = 0;
            TV a0 = TV.Zero, a1 = TV.Zero, a2 = TV.Zero, a3 = TV.Zero;
            for (; i <= len - 4 * w; i += 4 * w)
            {
                a0 = TV.Add(a0, TV.Load(ref At(a, start + i), 0));
                a1 = TV.Add(a1, TV.Load(ref At(a, start + i + w), 0));
                a2 = TV.Add(a2, TV.Load(ref At(a, start + i + 2 * w), 0));
                a3 = TV.Add(a3, TV.Load(ref At(a, start + i + 3 * w), 0));
            }
            for (; i <= len - w; i += w) a0 = TV.Add(a0, TV.Load(ref At(a, start + i), 0));
            float sum = TV.Sum(TV.Add(TV.Add(a0, a1), TV.Add(a2, a3)));
            for (; i < len; i++) sum += a[start + i];
            return sum;
        }

        // Eq. (gct.10): Σ ∂y · x.
        private static double Dot(float[] x, float[] dy, int start, int len)
        {
            int w = TV.Count, i = 0;
            TV a0 = TV.Zero, a1 = TV.Zero, a2 = TV.Zero, a3 = TV.Zero;
            for (; i <= len - 4 * w; i += 4 * w)
            {
                a0 = TV.Add(a0, TV.Multiply(TV.Load(ref At(dy, start + i), 0), TV.Load(ref At(x, start + i), 0)));
                a1 = TV.Add(a1, TV.Multiply(TV.Load(ref At(dy, start + i + w), 0), TV.Load(ref At(x, start + i + w), 0)));
                a2 = TV.Add(a2, TV.Multiply(TV.Load(ref At(dy, start + i + 2 * w), 0), TV.Load(ref At(x, start + i + 2 * w), 0)));
                a3 = TV.Add(a3, TV.Multiply(TV.Load(ref At(dy, start + i + 3 * w), 0), TV.Load(ref At(x, start + i + 3 * w), 0)));
            }
            for (; i <= len - w; i += w) a0 = TV.Add(a0, TV.Multiply(TV.Load(ref At(dy, start + i), 0), TV.Load(ref At(x, start + i), 0)));
            float sum = TV.Sum(TV.Add(TV.Add(a0, a1), TV.Add(a2, a3)));
            for (; i < len; i++) sum += dy[start + i] * x[start + i];
            return sum;
        }

        // Eq. (gct.9): y = x · gate.
        private static void Scale(float[] x, float[] y, int start, int len, float gate)
        {
            int w = TV.Count, i = 0;
            TV g = TV.Splat(gate);
            for (; i <= len - w; i += w) TV.Store(TV.Multiply(TV.Load(ref At(x, start + i), 0), g), ref At(y, start + i), 0);
            for (; i < len; i++) y[start + i] = x[start + i] * gate;
        }

        // Eqs. (gct.19), (gct.20): ∂x = ∂y · gate + f(x) · coef, f(x) = x (l2, coef = 2∂S), sgn(x) (l1), 1 (after_relu);
        // and y = x · gate too when y is given (the fused pass).
        private static void GradPass(GctMode mode, bool afterRelu, float[] x, float[] dy, float[]? y, float[] dx, int start, int len,
            float gate, float coef)
        {
            int w = TV.Count, i = 0;
            TV g = TV.Splat(gate), cf = TV.Splat(coef);
            int kind = mode == GctMode.L2 ? 0 : afterRelu ? 2 : 1;
            if (y is null)
            {
                if (kind == 0)
                    for (; i <= len - w; i += w)
                        TV.Store(TV.Add(TV.Multiply(TV.Load(ref At(dy, start + i), 0), g), TV.Multiply(TV.Load(ref At(x, start + i), 0), cf)), ref At(dx, start + i), 0);
                else if (kind == 1)
                    for (; i <= len - w; i += w)
                        TV.Store(TV.Add(TV.Multiply(TV.Load(ref At(dy, start + i), 0), g), TV.SignTimes(TV.Load(ref At(x, start + i), 0), cf)), ref At(dx, start + i), 0);
                else
                    for (; i <= len - w; i += w)
                        TV.Store(TV.Add(TV.Multiply(TV.Load(ref At(dy, start + i), 0), g), cf), ref At(dx, start + i), 0);
            }
            else
            {
                if (kind == 0)
                    for (; i <= len - w; i += w)
                    {
                        TV xv = TV.Load(ref At(x, start + i), 0);
                        TV.Store(TV.Multiply(xv, g), ref At(y, start + i), 0);
                        TV.Store(TV.Add(TV.Multiply(TV.Load(ref At(dy, start + i), 0), g), TV.Multiply(xv, cf)), ref At(dx, start + i), 0);
                    }
                else if (kind == 1)
                    for (; i <= len - w; i += w)
                    {
                        TV xv = TV.Load(ref At(x, start + i), 0);
                        TV.Store(TV.Multiply(xv, g), ref At(y, start + i), 0);
                        TV.Store(TV.Add(TV.Multiply(TV.Load(ref At(dy, start + i), 0), g), TV.SignTimes(xv, cf)), ref At(dx, start + i), 0);
                    }
                else
                    for (; i <= len - w; i += w)
                    {
                        TV.Store(TV.Multiply(TV.Load(ref At(x, start + i), 0), g), ref At(y, start + i), 0);
                        TV.Store(TV.Add(TV.Multiply(TV.Load(ref At(dy, start + i), 0), g), cf), ref At(dx, start + i), 0);
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
}
