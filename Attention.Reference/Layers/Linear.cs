namespace Attention.Reference.Layers;

/// <summary>
/// <c>nn.Linear(in, out, bias)</c> on [N, in], and the same map as a 1x1 <c>nn.Conv2d</c> on [N, in, *spatial]
/// (SE's fc1/fc2, CA's 1x1 convolutions): y[n, o, p] = (Σ_i w[o, i]·x[n, i, p]) + b[o]. With
/// <c>convForm</c> the weight is stored as [out, in, 1, 1], as the 1x1 convolution's state_dict has it; a state_dict
/// may give either shape (the values are the same).
/// <para>
/// Summation order (fixed, any thread count): each dot product is one sequential sum over i ascending, starting
/// from 0, then the bias is added. ∂L/∂x sums over o ascending; ∂L/∂w and ∂L/∂b over n, then p ascending.
/// Parallel loops split only over independent outputs.
/// </para>
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class Linear<T> : Layer<T> where T : IFloatingPointIeee754<T>
{
    private readonly bool _convForm;

    /// <summary>Creates the layer; parameters start at zero until a state_dict is loaded.</summary>
    public Linear(int inFeatures, int outFeatures, bool bias = true, bool convForm = false)
    {
        if (inFeatures < 1 || outFeatures < 1)
            throw new ArgumentException($"Linear: features must be at least 1, got in={inFeatures}, out={outFeatures}.");
        In = inFeatures;
        Out = outFeatures;
        _convForm = convForm;
        Weight = Param("weight", convForm ? [outFeatures, inFeatures, 1, 1] : [outFeatures, inFeatures]);
        Weight.AlternateShape = convForm ? [outFeatures, inFeatures] : [outFeatures, inFeatures, 1, 1];
        Bias = bias ? Param("bias", [outFeatures]) : null;
    }

    /// <summary>Input features.</summary>
    public int In { get; }

    /// <summary>Output features.</summary>
    public int Out { get; }

    /// <summary><c>weight</c>.</summary>
    public Parameter<T> Weight { get; }

    /// <summary><c>bias</c>, or null.</summary>
    public Parameter<T>? Bias { get; }

    /// <summary>
    /// The derivation's (equation, name) of this layer's weight and bias gradients, recorded in the pass's trace by the
    /// backward (the paper SE's dW1/db1, dW2/db2), or null.
    /// </summary>
    internal ((string Equation, string Name) Weight, (string Equation, string Name) Bias)? TraceGradients { get; init; }

    /// <inheritdoc />
    public override string Kind => _convForm ? "Conv2d" : "Linear";

    private (int N, int P) Check(DenseTensor<T> x, string what, int features)
    {
        if (x.Rank < 2 || x.Dim(1) != features || (!_convForm && x.Rank != 2))
            throw new ShapeMismatchException($"{DisplayName} {what}", _convForm ? $"[N, {features}, ...]" : $"[N, {features}]", x.ShapeArray());
        int p = 1;
        for (int d = 2; d < x.Rank; d++) p = checked(p * x.Dim(d));
        return (x.Dim(0), p);
    }

    /// <inheritdoc />
    protected override int[] OnInferShape(int[] input, ShapePlan plan)
    {
        if (input.Length < 2 || input[1] != In || (!_convForm && input.Length != 2))
            throw new ShapeMismatchException(InputName, _convForm ? $"[N, {In}, ...]" : $"[N, {In}]", input);
        var output = (int[])input.Clone();
        output[1] = Out;
        return output;
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnForward(DenseTensor<T> x, Pass<T> pass)
    {
        var (n, p) = Check(x, "input", In);
        Span<int> shape = stackalloc int[x.Rank];
        x.Shape.CopyTo(shape);
        shape[1] = Out;
        var y = pass.Uninitialized(this, "y", shape);
        long work = (long)n * In * Out * p;
        if (_weightT is not null && p == 1)
        {
            int blocks = (Out + LaneRows.Block - 1) / LaneRows.Block;
            Compute.ForWork(n * blocks, new LaneRows { X = x.Data, Y = y.Data, Wt = _weightT, B = Bias?.Value.Data, In = In, Out = Out, Blocks = blocks }, work);
        }
        else
            Compute.ForWork(n * ((Out + Rows.Block - 1) / Rows.Block),
                new Rows { X = x.Data, Y = y.Data, W = Weight.Value.Data, B = Bias?.Value.Data, In = In, Out = Out, P = p }, work);
        Save(pass, x);
        return y;
    }

    private T[]? _weightT;

    /// <summary>
    /// Inference plan: the weights are fixed from here on, so a transposed copy is kept, blocked by output features as
    /// [⌈Out/Block⌉][In][Block], and the forward on [N, In] (or [N, In, 1, 1], SE's excitation) runs output features in
    /// vector lanes — each lane the same sequential dot product as <see cref="Rows"/> (multiply, round, add, round;
    /// i ascending from 0; then + bias), so the same bits.
    /// </summary>
    internal void Freeze()
    {
        if (!Vector.IsHardwareAccelerated || !Vector<T>.IsSupported) return;
        // Blocked: for each block of LaneRows.Block output features, [In][Block] contiguous (zero past Out), so a work
        // unit streams one contiguous region (a row of the plain [In, Out] transpose split between units made every
        // unit read 128 bytes of each 4 KB page: the excitation's 10 MB of weights came in at half the bandwidth).
        var w = Weight.Value.Data;
        int block = LaneRows.Block, blocks = (Out + block - 1) / block;
        var wt = new T[(long)blocks * In * block];
        for (int o = 0; o < Out; o++)
            for (int i = 0; i < In; i++) wt[((long)(o / block) * In + i) * block + o % block] = w[o * In + i];
        _weightT = wt;
    }

    /// <summary>
    /// One image's block of up to four output features: each output (and position) a dot product in increasing input
    /// order from 0, then + bias. Independent chains run side by side — four outputs when there is one position, else
    /// the positions in vector lanes (then four at a time for the tail) — so each chain's additions are the plain loop's.
    /// </summary>
    private struct Rows : IForBody
    {
        public const int Block = 4;
        public T[] X, Y, W;
        public T[]? B;
        public int In, Out, P;

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int unit)
        {
            T[] xd = X, yd = Y, w = W;
            T[]? b = B;
            int inF = In, outF = Out, p = P, blocks = (outF + Block - 1) / Block;
            int i0 = unit / blocks, o0 = unit % blocks * Block, o1 = Math.Min(outF, o0 + Block);
            if (p == 1 && o1 - o0 == Block)
            {
                T a0 = T.Zero, a1 = T.Zero, a2 = T.Zero, a3 = T.Zero;
                int x0 = i0 * inF;
                for (int i = 0; i < inF; i++)
                {
                    T v = xd[x0 + i];
                    a0 += w[o0 * inF + i] * v;
                    a1 += w[(o0 + 1) * inF + i] * v;
                    a2 += w[(o0 + 2) * inF + i] * v;
                    a3 += w[(o0 + 3) * inF + i] * v;
                }
                int y0 = i0 * outF + o0;
                yd[y0] = b is null ? a0 : a0 + b[o0];
                yd[y0 + 1] = b is null ? a1 : a1 + b[o0 + 1];
                yd[y0 + 2] = b is null ? a2 : a2 + b[o0 + 2];
                yd[y0 + 3] = b is null ? a3 : a3 + b[o0 + 3];
                return;
            }
            int lanes = Vector<T>.IsSupported && Vector.IsHardwareAccelerated ? Vector<T>.Count : int.MaxValue;
            for (int o = o0; o < o1; o++)
            {
                int q = 0, yo = (i0 * outF + o) * p;
                // Positions in vector lanes: each lane is one output's chain over i ascending, the plain loop's.
                for (; q + lanes <= p; q += lanes)
                {
                    var acc = Vector<T>.Zero;
                    for (int i = 0; i < inF; i++) acc += new Vector<T>(w[o * inF + i]) * new Vector<T>(xd, (i0 * inF + i) * p + q);
                    if (b is not null) acc += new Vector<T>(b[o]);
                    acc.CopyTo(yd, yo + q);
                }
                for (; q + Block <= p; q += Block)
                {
                    T a0 = T.Zero, a1 = T.Zero, a2 = T.Zero, a3 = T.Zero;
                    for (int i = 0; i < inF; i++)
                    {
                        T wv = w[o * inF + i];
                        int xi = (i0 * inF + i) * p + q;
                        a0 += wv * xd[xi];
                        a1 += wv * xd[xi + 1];
                        a2 += wv * xd[xi + 2];
                        a3 += wv * xd[xi + 3];
                    }
                    yd[yo + q] = b is null ? a0 : a0 + b[o];
                    yd[yo + q + 1] = b is null ? a1 : a1 + b[o];
                    yd[yo + q + 2] = b is null ? a2 : a2 + b[o];
                    yd[yo + q + 3] = b is null ? a3 : a3 + b[o];
                }
                for (; q < p; q++)
                {
                    T acc = T.Zero;
                    for (int i = 0; i < inF; i++) acc += w[o * inF + i] * xd[(i0 * inF + i) * p + q];
                    yd[yo + q] = b is null ? acc : acc + b[o];
                }
            }
        }
    }

    /// <summary>One image's block of up to <see cref="Block"/> output features, in lanes: the dot products of Rows side by side.</summary>
    private struct LaneRows : IForBody
    {
        public const int Unroll = 4;
        public static int Block => Unroll * Vector<T>.Count;
        public T[] X, Y, Wt;
        public T[]? B;
        public int In, Out, Blocks;

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int job)
        {
            int img = job / Blocks, o0 = job % Blocks * Block, oEnd = Math.Min(Out, o0 + Block), inF = In, outF = Out;
            int v = Vector<T>.Count, block = Block;
            ReadOnlySpan<T> x = X.AsSpan(img * inF, inF), wt = Wt.AsSpan(job % Blocks * inF * block, inF * block);
            Span<T> y = Y.AsSpan(img * outF, outF);
            int o = o0;
            for (; o + Unroll * v <= oEnd; o += Unroll * v)
            {
                Vector<T> a0 = default, a1 = default, a2 = default, a3 = default;
                for (int i = 0; i < inF; i++)
                {
                    var xi = new Vector<T>(x[i]);
                    var row = wt.Slice(i * block + (o - o0), Unroll * v);
                    a0 += new Vector<T>(row) * xi;
                    a1 += new Vector<T>(row[v..]) * xi;
                    a2 += new Vector<T>(row[(2 * v)..]) * xi;
                    a3 += new Vector<T>(row[(3 * v)..]) * xi;
                }
                Store(a0, y, o);
                Store(a1, y, o + v);
                Store(a2, y, o + 2 * v);
                Store(a3, y, o + 3 * v);
            }
            for (; o + v <= oEnd; o += v)
            {
                Vector<T> a = default;
                for (int i = 0; i < inF; i++) a += new Vector<T>(wt.Slice(i * block + (o - o0), v)) * new Vector<T>(x[i]);
                Store(a, y, o);
            }
            for (; o < oEnd; o++)
            {
                T acc = T.Zero;
                for (int i = 0; i < inF; i++) acc += wt[i * block + (o - o0)] * x[i];
                y[o] = B is null ? acc : acc + B[o];
            }
        }

        private readonly void Store(Vector<T> acc, Span<T> y, int o)
        {
            if (B is not null) acc += new Vector<T>(B.AsSpan(o, Vector<T>.Count));
            acc.CopyTo(y[o..]);
        }
    }

    /// <summary>
    /// Gemm (transB = 1) on [N, In]; in its 1x1-convolution form on [N, In, H, W]: Reshape [N, In, H·W], MatMul by the
    /// weight as [Out, In], Reshape back, Add the bias [Out, 1, 1]. Both evaluate each output as the forward does — a
    /// dot product in increasing input order from 0 (multiply, round, add, round), then + bias — which ONNX's Conv
    /// (the conv kernel's FMA chain) would not.
    /// </summary>
    protected override string OnExport(IGraphWriter<T> writer, string input)
    {
        var s = writer.Shape(input);
        string w = writer.Tensor(KeyOf(Weight), Weight.Value.Reshape(Out, In));
        string? b = Bias is null ? null : writer.Tensor(KeyOf(Bias), _convForm ? Bias.Value.Reshape(Out, 1, 1) : Bias.Value);
        if (!_convForm)
        {
            var inputs = b is null ? new List<string> { input, w } : [input, w, b];
            return writer.Node(this, "Gemm", inputs, [s[0], Out], new Dictionary<string, object> { ["transB"] = 1L });
        }
        int p = s[2..].Aggregate(1, (a, d) => a * d);
        string flat = writer.Node(this, "Reshape", [input, writer.Int64s(s[0], In, p)], [s[0], In, p]);
        string prod = writer.Node(this, "MatMul", [w, flat], [s[0], Out, p]);
        int[] outShape = [s[0], Out, .. s[2..]];
        string y = writer.Node(this, "Reshape", [prod, writer.Int64s(outShape.Select(d => (long)d).ToArray())], outShape);
        return b is null ? y : writer.Node(this, "Add", [y, b], outShape);
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnBackward(DenseTensor<T> dy, Pass<T> pass)
    {
        var x = Restore<DenseTensor<T>>(pass);
        var (n, p) = Check(dy, "output gradient", Out);
        T[] xd = x.Data, gd = dy.Data, w = Weight.Value.Data;
        int inF = In, outF = Out;
        var dw = new DenseTensor<T>(Weight.Value.ShapeArray());
        T[] dwd = dw.Data;
        long work = (long)n * inF * outF * p;
        Compute.ForWork(outF, o =>
        {
            int i = 0;
            // Four input features side by side: four independent chains, each the plain loop's (s, then q, ascending).
            for (; i + 4 <= inF; i += 4)
            {
                T a0 = T.Zero, a1 = T.Zero, a2 = T.Zero, a3 = T.Zero;
                for (int s = 0; s < n; s++)
                    for (int q = 0; q < p; q++)
                    {
                        T g = gd[(s * outF + o) * p + q];
                        int xi = (s * inF + i) * p + q;
                        a0 += g * xd[xi];
                        a1 += g * xd[xi + p];
                        a2 += g * xd[xi + 2 * p];
                        a3 += g * xd[xi + 3 * p];
                    }
                dwd[o * inF + i] = a0;
                dwd[o * inF + i + 1] = a1;
                dwd[o * inF + i + 2] = a2;
                dwd[o * inF + i + 3] = a3;
            }
            for (; i < inF; i++)
            {
                T acc = T.Zero;
                for (int s = 0; s < n; s++)
                    for (int q = 0; q < p; q++) acc += gd[(s * outF + o) * p + q] * xd[(s * inF + i) * p + q];
                dwd[o * inF + i] = acc;
            }
        }, work);
        Weight.Accumulate(dw);
        if (TraceGradients is var ((weq, wname), _)) pass.Trace?.Backward(weq, wname, dw.Reshape(outF, inF));
        if (Bias is not null)
        {
            var db = new DenseTensor<T>(outF);
            for (int o = 0; o < outF; o++)
            {
                T acc = T.Zero;
                for (int s = 0; s < n; s++)
                    for (int q = 0; q < p; q++) acc += gd[(s * outF + o) * p + q];
                db.Data[o] = acc;
            }
            Bias.Accumulate(db);
            if (TraceGradients is var (_, (beq, bname))) pass.Trace?.Backward(beq, bname, db);
        }
        var dx = pass.Uninitialized(this, "dx", x.Shape);
        T[] dxd = dx.Data;
        int lanes = Vector<T>.IsSupported && Vector.IsHardwareAccelerated ? Vector<T>.Count : int.MaxValue;
        Compute.ForWork(n * inF, ni =>
        {
            int s = ni / inF, i = ni % inF, q = 0;
            // Positions in vector lanes: each lane one chain over o ascending, the plain loop's.
            for (; q + lanes <= p; q += lanes)
            {
                var acc = Vector<T>.Zero;
                for (int o = 0; o < outF; o++) acc += new Vector<T>(w[o * inF + i]) * new Vector<T>(gd, (s * outF + o) * p + q);
                acc.CopyTo(dxd, ni * p + q);
            }
            for (; q < p; q++)
            {
                T acc = T.Zero;
                for (int o = 0; o < outF; o++) acc += w[o * inF + i] * gd[(s * outF + o) * p + q];
                dxd[ni * p + q] = acc;
            }
        }, work);
        return dx;
    }
}
