namespace Attention.Reference.Layers;

/// <summary>
/// The authors' <c>h_sigmoid</c> (mbv2_ca.py): child <c>relu</c> (<c>nn.ReLU6</c>); y = relu(x + 3) / 6
/// (Eq. (act.5)). Backward: ∂x = relu'(∂y / 6), so the derivative is 0 at exactly ±3 (Eq. (act.6)).
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class HSigmoid<T> : Layer<T> where T : IFloatingPointIeee754<T>
{
    private readonly Layer<T> _relu;

    /// <summary>Creates the module.</summary>
    public HSigmoid() => _relu = Child("relu", Act.Relu6<T>());

    /// <inheritdoc />
    public override string Kind => "h_sigmoid";

    /// <inheritdoc />
    protected override int[] OnInferShape(int[] input, ShapePlan plan) => _relu.InferShape(input, plan);

    /// <inheritdoc />
    protected override DenseTensor<T> OnForward(DenseTensor<T> x, Pass<T> pass)
    {
        T three = T.CreateTruncating(3), six = T.CreateTruncating(6);
        if (pass.InPlaceAllowed)
        {
            // Nothing observes the child (no tape, dump or hook): its ReLU6 evaluated inline, the same operations per
            // element: (x + 3), ReLU6, / 6.
            var output = pass.Uninitialized(this, "y", x.Shape);
            T[] xd = x.Data, od = output.Data;
            for (int i = 0; i < xd.Length; i++) od[i] = Ops.Activations.Relu6(xd[i] + three) / six;
            return output;
        }
        var shifted = x.ZerosLike();
        for (int i = 0; i < x.Length; i++) shifted.Data[i] = x.Data[i] + three;
        var r = _relu.Forward(shifted, pass);
        var y = r.ZerosLike();
        for (int i = 0; i < y.Length; i++) y.Data[i] = r.Data[i] / six;
        return y;
    }

    /// <summary>Add 3, the ReLU6 child (Clip), Div 6.</summary>
    protected override string OnExport(IGraphWriter<T> writer, string input)
    {
        var s = writer.Shape(input);
        string r = _relu.Export(writer, writer.Node(this, "Add", [input, writer.Scalar(3)], s));
        return writer.Node(this, "Div", [r, writer.Scalar(6)], s);
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnBackward(DenseTensor<T> dy, Pass<T> pass)
    {
        T six = T.CreateTruncating(6);
        var dr = dy.ZerosLike();
        for (int i = 0; i < dr.Length; i++) dr.Data[i] = dy.Data[i] / six;
        return _relu.Backward(dr, pass);
    }
}

/// <summary>
/// The authors' <c>h_swish</c> (mbv2_ca.py): child <c>sigmoid</c> (<see cref="HSigmoid{T}"/>); y = x · sigmoid(x)
/// (Eq. (act.7)). Backward by the product rule (Eq. (act.8)): ∂x = ∂y · s + sigmoid'(∂y · x).
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class HSwish<T> : Layer<T> where T : IFloatingPointIeee754<T>
{
    private readonly Layer<T> _sigmoid;

    /// <summary>Creates the module.</summary>
    public HSwish() => _sigmoid = Child("sigmoid", new HSigmoid<T>());

    /// <inheritdoc />
    public override string Kind => "h_swish";

    /// <inheritdoc />
    protected override int[] OnInferShape(int[] input, ShapePlan plan) => _sigmoid.InferShape(input, plan);

    /// <inheritdoc />
    protected override DenseTensor<T> OnForward(DenseTensor<T> x, Pass<T> pass)
    {
        var s = _sigmoid.Forward(x, pass);
        var y = pass.Uninitialized(this, "y", x.Shape);
        for (int i = 0; i < y.Length; i++) y.Data[i] = x.Data[i] * s.Data[i];
        Save(pass, (x, s));
        return y;
    }

    /// <summary>Mul(x, h_sigmoid(x)).</summary>
    protected override string OnExport(IGraphWriter<T> writer, string input) =>
        writer.Node(this, "Mul", [input, _sigmoid.Export(writer, input)], writer.Shape(input));

    /// <inheritdoc />
    protected override DenseTensor<T> OnBackward(DenseTensor<T> dy, Pass<T> pass)
    {
        var (x, s) = Restore<(DenseTensor<T>, DenseTensor<T>)>(pass);
        var ds = dy.ZerosLike();
        for (int i = 0; i < ds.Length; i++) ds.Data[i] = dy.Data[i] * x.Data[i];
        var viaGate = _sigmoid.Backward(ds, pass);
        var dx = dy.ZerosLike();
        for (int i = 0; i < dx.Length; i++) dx.Data[i] = dy.Data[i] * s.Data[i] + viaGate.Data[i];
        return dx;
    }
}

/// <summary>
/// The names the two author files give CoordAtt's children: coordatt.py (<c>conv_h</c>, <c>conv_w</c>, <c>act</c>) and
/// mbv2_ca.py (<c>conv2</c>, <c>conv3</c>, <c>relu</c>); <c>pool_h</c>, <c>pool_w</c>, <c>conv1</c> and <c>bn1</c> are common.
/// </summary>
/// <param name="ConvH">The 1x1 convolution giving a_h.</param>
/// <param name="ConvW">The 1x1 convolution giving a_w.</param>
/// <param name="Act">The h_swish module.</param>
public sealed record CoordAttNames(string ConvH, string ConvW, string Act)
{
    /// <summary>houqb/CoordAttention coordatt.py's <c>CoordAtt(inp, oup, reduction=32)</c>.</summary>
    public static CoordAttNames CoordAttPy { get; } = new("conv_h", "conv_w", "act");

    /// <summary>houqb/CoordAttention mbv2_ca.py's <c>CoordAtt(inp, oup, groups=32)</c>.</summary>
    public static CoordAttNames Mbv2Ca { get; } = new("conv2", "conv3", "relu");
}

/// <summary>
/// Coordinate Attention (Hou et al., CVPR 2021), the one CA layer, as both author files build it (the child names by
/// <see cref="CoordAttNames"/>): children <c>pool_h</c>, <c>pool_w</c> (directional means), <c>conv1</c> (1x1,
/// inp → mip, bias), <c>bn1</c>, the h_swish (<see cref="HSwish{T}"/>), and the two 1x1 convolutions mip → oup giving
/// a_h and a_w; the sigmoids are functionals (docs/derivations/ca.md, Eqs. (ca.1)–(ca.22)): concatenate x_h and the
/// transposed x_w along the height, conv1 → bn1 → h_swish, split, the two convolutions, sigmoids,
/// y = x · a_w · a_h. In training mode bn1 normalises with the batch statistics and updates its running statistics.
/// Every named intermediate of the derivation is recorded for <c>attention-ref trace</c>.
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class CoordAtt<T> : Layer<T> where T : IFloatingPointIeee754<T>
{
    private readonly DirectionalAvgPool2d<T> _poolH, _poolW;
    private readonly Linear<T> _conv1, _conv2, _conv3;
    private readonly BatchNorm2dLayer<T> _bn1;
    private readonly HSwish<T> _relu;

    /// <summary>Creates the module with hidden width <paramref name="mip"/> and the children named by <paramref name="names"/>.</summary>
    public CoordAtt(int inp, int oup, int mip, CoordAttNames names, double eps = 1e-5, double momentum = 0.1)
    {
        ArgumentNullException.ThrowIfNull(names);
        _poolH = Child("pool_h", new DirectionalAvgPool2d<T>(overWidth: true));
        _poolW = Child("pool_w", new DirectionalAvgPool2d<T>(overWidth: false));
        _conv1 = Child("conv1", new Linear<T>(inp, mip, true, convForm: true));
        _bn1 = Child("bn1", new BatchNorm2dLayer<T>(mip, eps, momentum)
            { TraceBatchStatistics = (("ca.5", "mean"), ("ca.5", "var")) });
        // Registration order as the author files: coordatt.py registers act before conv_h and conv_w, mbv2_ca.py its
        // relu after conv2 and conv3 (the state_dict holds no tensor of either, so only the module order differs).
        bool actFirst = names == CoordAttNames.CoordAttPy;
        if (actFirst) _relu = Child(names.Act, new HSwish<T>());
        _conv2 = Child(names.ConvH, new Linear<T>(mip, oup, true, convForm: true));
        _conv3 = Child(names.ConvW, new Linear<T>(mip, oup, true, convForm: true));
        _relu = actFirst ? _relu! : Child(names.Act, new HSwish<T>());
        Mip = mip;
    }

    /// <summary>mbv2_ca.py's <c>CoordAtt(inp, oup, groups=32)</c>: mip = max(8, inp // groups).</summary>
    public static CoordAtt<T> Mbv2Ca(int inp, int oup, int groups = 32) => new(inp, oup, DefaultMip(inp, groups), CoordAttNames.Mbv2Ca);

    /// <summary>coordatt.py's <c>CoordAtt(inp, oup, reduction=32)</c> with an explicit hidden width and BatchNorm settings.</summary>
    public static CoordAtt<T> CoordAttPy(int channels, int mip, double eps = 1e-5, double momentum = 0.1) =>
        new(channels, channels, mip, CoordAttNames.CoordAttPy, eps, momentum);

    /// <summary>Both author files' hidden width: max(8, inp // reduction).</summary>
    public static int DefaultMip(int inp, int reduction) => Math.Max(8, inp / reduction);

    /// <summary>The hidden width.</summary>
    public int Mip { get; }

    /// <inheritdoc />
    public override string Kind => "CoordAtt";

    /// <inheritdoc />
    protected override int[] OnInferShape(int[] input, ShapePlan plan)
    {
        RequireNchw(input, _conv1.In);
        if (_conv2.Out != input[1]) throw new ShapeMismatchException(DisplayName + " gates", $"[N, {input[1]}, …] (oup = inp)", [input[0], _conv2.Out]);
        int n = input[0], h = input[2], w = input[3];
        _poolH.InferShape(input, plan);
        _poolW.InferShape(input, plan);
        if (h < 1 || w < 1) throw new ShapeMismatchException(InputName, "[N, C, H, W] with H ≥ 1 and W ≥ 1", input);
        var y = _relu.InferShape(_bn1.InferShape(_conv1.InferShape([n, input[1], checked(h + w), 1], plan), plan), plan);
        _conv2.InferShape([n, y[1], h, 1], plan);
        _conv3.InferShape([n, y[1], 1, w], plan);
        return input;
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnForward(DenseTensor<T> x, Pass<T> pass)
    {
        if (x.Rank != 4) ShapeUtil.RequireRank(x, DisplayName + " input", 4, "N, C, H, W"); // (the name only on failure)
        int n = x.Dim(0), c = x.Dim(1), h = x.Dim(2), w = x.Dim(3);
        var xh = _poolH.Forward(x, pass);                       // [N, C, H, 1]
        var xw = _poolW.Forward(x, pass);                       // [N, C, 1, W]; permuted to [N, C, W, 1]: same memory
        var cat = Concat(xh.Data, xw.Data, n, c, h, w, pass.Uninitialized(this, "y_cat", [n, c, h + w, 1])); // [N, C, H + W, 1]
        var trace = pass.Trace;
        trace?.Forward("ca.1", "x_h", xh.Reshape(n, c, h));
        trace?.Forward("ca.2", "x_w", xw.Reshape(n, c, w));
        trace?.Forward("ca.3", "y_cat", cat.Reshape(n, c, h + w));
        var f = _conv1.Forward(cat, pass);
        int mip = f.Dim(1);
        trace?.Forward("ca.4", "f", f.Reshape(n, mip, h + w));
        var bn = _bn1.Forward(f, pass);
        trace?.Forward("ca.5", "bn", bn.Reshape(n, mip, h + w));
        var y = _relu.Forward(bn, pass);
        trace?.Forward("ca.6", "act", y.Reshape(n, mip, h + w));
        var (yh, yw) = Split(y.Data, n * mip, h, w, pass.Uninitialized(this, "y_h", [n, mip, h, 1]),
            pass.Uninitialized(this, "y_w", [n, mip, 1, w]));
        var zh = _conv2.Forward(yh, pass);
        var zw = _conv3.Forward(yw, pass);
        int oup = zh.Dim(1);
        if (oup != c) throw new ShapeMismatchException(DisplayName + " gates", $"[N, {c}, …] (oup = inp)", zh.ShapeArray());
        // The fast kernels' float32 sigmoid is TensorPrimitives' vectorised one (within rounding of the formula); the oracle
        // evaluates Eq. (act.1) literally.
        bool fast = pass.Kernels == KernelPath.Fast;
        var ah = Sigmoid(zh, pass.Uninitialized(this, "a_h", [n, c, h, 1]), h, fast);
        var aw = Sigmoid(zw, pass.Uninitialized(this, "a_w", [n, c, 1, w]), w, fast);
        trace?.Forward("ca.8", "a_h", ah.Reshape(n, c, h));
        trace?.Forward("ca.9", "a_w", aw.Reshape(n, c, w));
        pass.OnGate?.Invoke(DisplayName + ":a_h", ah);
        pass.OnGate?.Invoke(DisplayName + ":a_w", aw);
        // y = identity * x_w * x_h, evaluated left to right (an inference plan writes it into x when the block owns x:
        // each element reads only its own x).
        var outp = pass.MayOverwriteInput(this) ? x : pass.Uninitialized(this, "y", x.Shape);
        Compute.For(n * c, new Recalibrate { X = x.Data, Out = outp.Data, Ah = ah.Data, Aw = aw.Data, H = h, W = w });
        trace?.Forward("ca.10", "y", outp);
        Save(pass, (x, ah, aw));
        return outp;
    }

    /// <summary>One (n, c) plane of y = x · a_w · a_h (left to right), each row in vector lanes over w: the same two
    /// roundings per element as the scalar expression.</summary>
    private struct Recalibrate : IForBody
    {
        public T[] X, Out, Ah, Aw;
        public int H, W;

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int p)
        {
            int h = H, w = W;
            T[] xd = X, od = Out, ahd = Ah, awd = Aw;
            bool inPlace = ReferenceEquals(xd, od);
            int v = Vector<T>.IsSupported && Vector.IsHardwareAccelerated ? Vector<T>.Count : int.MaxValue;
            for (int i = 0; i < h; i++)
            {
                int r = (p * h + i) * w, j = 0;
                T a = ahd[p * h + i];
                if (v <= w)
                {
                    // Whole vectors, then one more ending at the row's end (overlapping lanes recompute the same values) —
                    // unless y is x itself (an inference plan's in-place output), where the tail is done one by one.
                    var va = new Vector<T>(a);
                    for (; j + v <= w; j += v) (new Vector<T>(xd, r + j) * new Vector<T>(awd, p * w + j) * va).CopyTo(od, r + j);
                    if (j < w && !inPlace)
                    {
                        j = w - v;
                        (new Vector<T>(xd, r + j) * new Vector<T>(awd, p * w + j) * va).CopyTo(od, r + j);
                        j = w;
                    }
                }
                for (; j < w; j++) od[r + j] = xd[r + j] * awd[p * w + j] * a;
            }
        }
    }

    /// <summary>
    /// One (n, c) plane of Eqs. (ca.11)–(ca.13): ∂a_h[i] = Σ_w ∂y·(x·a_w) (a chain over w per row), ∂a_w[j] =
    /// Σ_h (∂y·a_h)·x (a chain over h per column, the columns in vector lanes) and the product path
    /// ∂x = (∂y·a_h)·a_w (lanes over w); every chain and element in the scalar formulas' order.
    /// </summary>
    private struct GateGradients : IForBody
    {
        public T[] X, Dy, Ah, Aw, Dx, Dah, Daw;
        public int H, W;

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int p)
        {
            int h = H, w = W;
            T[] xd = X, gd = Dy, ahd = Ah, awd = Aw, dxd = Dx;
            int v = Vector<T>.IsSupported && Vector.IsHardwareAccelerated ? Vector<T>.Count : int.MaxValue;
            int i4 = 0;
            for (; i4 + 4 <= h; i4 += 4)
            {
                // Four rows' ∂a_h chains side by side (each the plain loop's, over w ascending).
                T s0 = T.Zero, s1 = T.Zero, s2 = T.Zero, s3 = T.Zero;
                int r0 = (p * h + i4) * w;
                for (int j = 0; j < w; j++)
                {
                    T aj = awd[p * w + j];
                    s0 += gd[r0 + j] * (xd[r0 + j] * aj);
                    s1 += gd[r0 + w + j] * (xd[r0 + w + j] * aj);
                    s2 += gd[r0 + 2 * w + j] * (xd[r0 + 2 * w + j] * aj);
                    s3 += gd[r0 + 3 * w + j] * (xd[r0 + 3 * w + j] * aj);
                }
                Dah[p * h + i4] = s0;
                Dah[p * h + i4 + 1] = s1;
                Dah[p * h + i4 + 2] = s2;
                Dah[p * h + i4 + 3] = s3;
            }
            for (int i = 0; i < h; i++)
            {
                int r = (p * h + i) * w;
                T a = ahd[p * h + i];
                if (i >= i4)
                {
                    T acc = T.Zero;
                    for (int j = 0; j < w; j++) acc += gd[r + j] * (xd[r + j] * awd[p * w + j]);
                    Dah[p * h + i] = acc;
                }
                int jj = 0;
                if (v <= w)
                {
                    var va = new Vector<T>(a);
                    for (; ; jj += v)
                    {
                        if (jj + v > w) jj = w - v;
                        (new Vector<T>(gd, r + jj) * va * new Vector<T>(awd, p * w + jj)).CopyTo(dxd, r + jj);
                        if (jj + v >= w) break;
                    }
                }
                else
                    for (; jj < w; jj++) dxd[r + jj] = gd[r + jj] * a * awd[p * w + jj];
            }
            int c0 = 0;
            if (v <= w)
            {
                for (; ; c0 += v)
                {
                    if (c0 + v > w) c0 = w - v; // the last vector ends at the row's end; overlapping columns recompute their chains
                    var acc = Vector<T>.Zero;
                    for (int i = 0; i < h; i++)
                    {
                        int k = (p * h + i) * w + c0;
                        acc += new Vector<T>(gd, k) * new Vector<T>(ahd[p * h + i]) * new Vector<T>(xd, k);
                    }
                    acc.CopyTo(Daw, p * w + c0);
                    if (c0 + v >= w) break;
                }
                c0 = w;
            }
            for (int j = c0; j < w; j++)
            {
                T acc = T.Zero;
                for (int i = 0; i < h; i++)
                {
                    int k = (p * h + i) * w + j;
                    acc += gd[k] * ahd[p * h + i] * xd[k];
                }
                Daw[p * w + j] = acc;
            }
        }
    }

    /// <summary>
    /// One (n, c) plane of Eq. (ca.22): ∂x = (∂x_prod + ∂x_h[i] / W) + ∂x_w[j] / H — the pools' adjoints (each pooled
    /// value a mean) added as the pools' own backward passes would give them, lanes over w.
    /// </summary>
    private struct AddPoolAdjoints : IForBody
    {
        public T[] Dx, Dxh, Dxw;
        public int H, W;

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int p)
        {
            int h = H, w = W;
            T fw = T.CreateChecked(w), fh = T.CreateChecked(h);
            T[] dxd = Dx;
            int v = Vector<T>.IsSupported && Vector.IsHardwareAccelerated ? Vector<T>.Count : int.MaxValue;
            for (int i = 0; i < h; i++)
            {
                int r = (p * h + i) * w, j = 0;
                T gh = Dxh[p * h + i] / fw;
                if (v <= w)
                {
                    // Whole vectors; the last row elements are done by one scalar pass (this update reads what it writes,
                    // so an overlapping vector would add twice).
                    var vgh = new Vector<T>(gh);
                    var vfh = new Vector<T>(fh);
                    for (; j + v <= w; j += v) (new Vector<T>(dxd, r + j) + vgh + new Vector<T>(Dxw, p * w + j) / vfh).CopyTo(dxd, r + j);
                }
                for (; j < w; j++) dxd[r + j] = dxd[r + j] + gh + Dxw[p * w + j] / fh;
            }
        }
    }

    /// <summary>
    /// As the authors' forward exports: the two pools, Transpose of x_w, Concat on axis 2, conv1, bn1, h_swish, two
    /// Slices, Transpose back, the a_h / a_w convolutions, Sigmoid, then (x·a_w)·a_h.
    /// </summary>
    protected override string OnExport(IGraphWriter<T> writer, string input)
    {
        var s = writer.Shape(input);
        int n = s[0], c = s[1], h = s[2], w = s[3];
        var perm = new Dictionary<string, object> { ["perm"] = new[] { 0, 1, 3, 2 } };
        string xh = _poolH.Export(writer, input);
        string xw = writer.Node(this, "Transpose", [_poolW.Export(writer, input)], [n, c, w, 1], perm);
        string cat = writer.Node(this, "Concat", [xh, xw], [n, c, h + w, 1], new Dictionary<string, object> { ["axis"] = 2L });
        string y = _relu.Export(writer, _bn1.Export(writer, _conv1.Export(writer, cat)));
        int mip = writer.Shape(y)[1];
        string yh = writer.Node(this, "Slice", [y, writer.Int64s(0), writer.Int64s(h), writer.Int64s(2)], [n, mip, h, 1]);
        string yw0 = writer.Node(this, "Slice", [y, writer.Int64s(h), writer.Int64s(h + w), writer.Int64s(2)], [n, mip, w, 1]);
        string yw = writer.Node(this, "Transpose", [yw0], [n, mip, 1, w], perm);
        string ah = writer.Node(this, "Sigmoid", [_conv2.Export(writer, yh)], [n, c, h, 1]);
        string aw = writer.Node(this, "Sigmoid", [_conv3.Export(writer, yw)], [n, c, 1, w]);
        return writer.Node(this, "Mul", [writer.Node(this, "Mul", [input, aw], s), ah], s);
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnBackward(DenseTensor<T> dy, Pass<T> pass)
    {
        var (x, ah, aw) = Restore<(DenseTensor<T>, DenseTensor<T>, DenseTensor<T>)>(pass);
        int n = x.Dim(0), c = x.Dim(1), h = x.Dim(2), w = x.Dim(3);
        T[] xd = x.Data, gd = dy.Data, ahd = ah.Data, awd = aw.Data;
        var dx = pass.Uninitialized(this, "dx", x.Shape);
        var dah = pass.Uninitialized(this, "da_h", [n, c, h, 1]);
        var daw = pass.Uninitialized(this, "da_w", [n, c, 1, w]);
        // out = (x·a_w)·a_h: ∂a_h = Σ_w ∂out·(x·a_w); ∂(x·a_w) = ∂out·a_h; ∂a_w = Σ_h ∂(x·a_w)·x; ∂x = ∂(x·a_w)·a_w.
        Compute.For(n * c, new GateGradients
        {
            X = xd, Dy = gd, Ah = ahd, Aw = awd, Dx = dx.Data, Dah = dah.Data, Daw = daw.Data, H = h, W = w,
        });
        var trace = pass.Trace;
        trace?.Backward("ca.11", "da_h", dah.Reshape(n, c, h));
        trace?.Backward("ca.12", "da_w", daw.Reshape(n, c, w));
        trace?.Backward("ca.13", "dx_prod", dx);
        var dzh = Zip(dah, ah, (g, s) => g * Ops.Activations.SigmoidGradFromOutput(s));
        var dzw = Zip(daw, aw, (g, s) => g * Ops.Activations.SigmoidGradFromOutput(s));
        trace?.Backward("ca.14", "dz_h", dzh.Reshape(n, c, h));
        trace?.Backward("ca.14", "dz_w", dzw.Reshape(n, c, w));
        var dyh = _conv2.Backward(dzh, pass);
        var dyw = _conv3.Backward(dzw, pass);
        int mip = dyh.Dim(1);
        var dcat = Concat(dyh.Data, dyw.Data, n, mip, h, w);
        trace?.Backward("ca.17", "dact", dcat.Reshape(n, mip, h + w));
        var dbn = _relu.Backward(dcat, pass);
        trace?.Backward("ca.18", "dbn", dbn);
        var df = _bn1.Backward(dbn, pass);
        trace?.Backward("ca.19", "df", df.Reshape(n, mip, h + w));
        var dxcat = _conv1.Backward(df, pass);
        trace?.Backward("ca.21", "dy_cat", dxcat.Reshape(n, c, h + w));
        var (dxh, dxw) = Split(dxcat.Data, n * c, h, w, pass.Uninitialized(this, "dx_h", [n, c, h, 1]),
            pass.Uninitialized(this, "dx_w", [n, c, 1, w]));
        // The pools' adjoints, dxh / W and dxw / H broadcast, are added here in the pools' own arithmetic (fused, not two
        // more full-size tensors); the pools' saved shapes are dropped from the tape.
        _poolH.DropSaved(pass);
        _poolW.DropSaved(pass);
        Compute.For(n * c, new AddPoolAdjoints { Dx = dx.Data, Dxh = dxh.Data, Dxw = dxw.Data, H = h, W = w });
        trace?.Backward("ca.22", "dx", dx);
        return dx;
    }

    /// <summary>torch.cat([a [N, C, H, 1], b [N, C, W, 1]], dim=2) → [N, C, H + W, 1] (into <paramref name="into"/> if given).</summary>
    private static DenseTensor<T> Concat(T[] a, T[] b, int n, int c, int h, int w, DenseTensor<T>? into = null)
    {
        var t = into ?? new DenseTensor<T>(n, c, h + w, 1);
        var r = t.Data;
        for (int p = 0; p < n * c; p++)
        {
            Array.Copy(a, p * h, r, p * (h + w), h);
            Array.Copy(b, p * w, r, p * (h + w) + h, w);
        }
        return t;
    }

    /// <summary>Splits [planes, H + W] rows into the first H and the last W values of each.</summary>
    private static (DenseTensor<T> H, DenseTensor<T> W) Split(T[] y, int planes, int h, int w, DenseTensor<T> a, DenseTensor<T> b)
    {
        for (int p = 0; p < planes; p++)
        {
            Array.Copy(y, p * (h + w), a.Data, p * h, h);
            Array.Copy(y, p * (h + w) + h, b.Data, p * w, w);
        }
        return (a, b);
    }

    /// <summary>The sigmoid functional, element by element, into <paramref name="into"/>.</summary>
    private static DenseTensor<T> Sigmoid(DenseTensor<T> t, DenseTensor<T> into, int row, bool fast)
    {
        if (fast && s_vectorSigmoid is { } sigmoid)
        {
            // The fast kernels' float32 sigmoid over the whole gate at once (lane by lane: the same bits as row by row, and
            // one call instead of one per short row).
            t.Data.AsSpan(0, t.Length).CopyTo(into.Data);
            sigmoid(into.Data.AsSpan(0, t.Length));
            return into;
        }
        Compute.ForWork(t.Length / row, new SigmoidRows { Z = t.Data, A = into.Data, Row = row }, 16L * t.Length);
        return into;
    }

    /// <summary>The epilogues' vector sigmoid for float32 (Ops.VectorActivations), resolved once; null for float64.</summary>
    private static readonly Ops.VectorActivations.SpanMap<T>? s_vectorSigmoid =
        typeof(T) == typeof(float) ? Ops.VectorActivations.Find<T>("Sigmoid") : null;

    /// <summary>σ over rows of a gate: Eq. (act.1) literally.</summary>
    private struct SigmoidRows : IForBody
    {
        public T[] Z, A;
        public int Row;

        public readonly void Invoke(int r)
        {
            var z = Z.AsSpan(r * Row, Row);
            var a = A.AsSpan(r * Row, Row);
            for (int i = 0; i < z.Length; i++) a[i] = Ops.Activations.Sigmoid(z[i]);
        }
    }

    private static DenseTensor<T> Zip(DenseTensor<T> a, DenseTensor<T> b, Func<T, T, T> f)
    {
        var r = a.ZerosLike();
        for (int i = 0; i < r.Length; i++) r.Data[i] = f(a.Data[i], b.Data[i]);
        return r;
    }
}
