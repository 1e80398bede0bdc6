using System.Numerics;
using Attention.Reference.Tensors;

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
        if (Inference && pass.InPlaceAllowed)
        {
            // Inference plan: the child's ReLU6 evaluated inline (nothing is recorded), into one reused buffer; the
            // same operations per element: (x + 3), ReLU6, / 6.
            var output = PlanBuffer(ref _output, x.Shape);
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

    private DenseTensor<T>? _output;

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
        DenseTensor<T> y;
        if (Inference && pass.InPlaceAllowed)
        {
            // Inference plan: one reused buffer (or x itself when this layer owns it: each element reads only its own x).
            if (InputOwned) y = x;
            else y = PlanBuffer(ref _output, x.Shape);
        }
        else y = x.ZerosLike();
        for (int i = 0; i < y.Length; i++) y.Data[i] = x.Data[i] * s.Data[i];
        Save(pass, (x, s));
        return y;
    }

    private DenseTensor<T>? _output;

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
/// Coordinate Attention as mbv2_ca.py builds it, <c>CoordAtt(inp, oup, groups=32)</c>: children <c>pool_h</c>,
/// <c>pool_w</c> (directional means), <c>conv1</c> (1x1, inp → mip = max(8, inp // groups), bias), <c>bn1</c>,
/// <c>conv2</c> → a_h and <c>conv3</c> → a_w (1x1, mip → oup, bias), <c>relu</c> (<see cref="HSwish{T}"/>). The
/// same computation as the coordatt.py module of docs/derivations/ca.md (Eqs. (ca.1)–(ca.22)), built from the
/// children so every one of them appears in a module dump: concatenate x_h and the transposed x_w along the
/// height, conv1 → bn1 → relu, split, conv2 / conv3, sigmoids (functionals), y = x · a_w · a_h.
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class CoordAttMbv2<T> : Layer<T> where T : IFloatingPointIeee754<T>
{
    /// <inheritdoc />
    protected internal override bool OutputIsOwnBuffer => true;

    private readonly DirectionalAvgPool2d<T> _poolH, _poolW;
    private readonly Linear<T> _conv1, _conv2, _conv3;
    private readonly BatchNorm2dLayer<T> _bn1;
    private readonly HSwish<T> _relu;

    /// <summary>Creates the module.</summary>
    public CoordAttMbv2(int inp, int oup, int groups = 32)
    {
        int mip = Math.Max(8, inp / groups);
        _poolH = Child("pool_h", new DirectionalAvgPool2d<T>(overWidth: true));
        _poolW = Child("pool_w", new DirectionalAvgPool2d<T>(overWidth: false));
        _conv1 = Child("conv1", new Linear<T>(inp, mip, true, convForm: true));
        _bn1 = Child("bn1", new BatchNorm2dLayer<T>(mip));
        _conv2 = Child("conv2", new Linear<T>(mip, oup, true, convForm: true));
        _conv3 = Child("conv3", new Linear<T>(mip, oup, true, convForm: true));
        _relu = Child("relu", new HSwish<T>());
    }

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
        // An inference plan keeps every intermediate buffer from one forward to the next (nothing is recorded).
        bool plan = Inference && pass.InPlaceAllowed;
        var cat = Concat(xh.Data, xw.Data, n, c, h, w, plan ? PlanBuffer(ref _cat, [n, c, h + w, 1]) : null); // [N, C, H + W, 1]
        var y = _relu.Forward(_bn1.Forward(_conv1.Forward(cat, pass), pass), pass);
        int mip = y.Dim(1);
        var (yh, yw) = Split(y.Data, n * mip, h, w,
            plan ? PlanBuffer(ref _yh, [n, mip, h, 1]) : new DenseTensor<T>(n, mip, h, 1), plan ? PlanBuffer(ref _yw, [n, mip, 1, w]) : new DenseTensor<T>(n, mip, 1, w));
        var zh = _conv2.Forward(yh, pass);
        var zw = _conv3.Forward(yw, pass);
        int oup = zh.Dim(1);
        if (oup != c) throw new ShapeMismatchException(DisplayName + " gates", $"[N, {c}, …] (oup = inp)", zh.ShapeArray());
        var ah = Sigmoid(zh, plan ? PlanBuffer(ref _ah, [n, c, h, 1]) : zh.ZerosLike());
        var aw = Sigmoid(zw, plan ? PlanBuffer(ref _aw, [n, c, 1, w]) : zw.ZerosLike());
        pass.OnGate?.Invoke(DisplayName + ":a_h", ah);
        pass.OnGate?.Invoke(DisplayName + ":a_w", aw);
        // y = identity * x_w * x_h, evaluated left to right (an inference plan writes it into x when the block owns x:
        // each element reads only its own x).
        var outp = plan && InputOwned ? x : plan ? PlanBuffer(ref _out, [n, c, h, w]) : x.ZerosLike();
        Compute.For(n * c, new Recalibrate { X = x.Data, Out = outp.Data, Ah = ah.Data, Aw = aw.Data, H = h, W = w });
        Save(pass, (x, ah, aw));
        return outp;
    }

    private DenseTensor<T>? _cat, _yh, _yw, _ah, _aw, _out;

    /// <summary>One (n, c) plane of y = x · a_w · a_h (left to right).</summary>
    private struct Recalibrate : IForBody
    {
        public T[] X, Out, Ah, Aw;
        public int H, W;

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int p)
        {
            int h = H, w = W;
            T[] xd = X, od = Out, ahd = Ah, awd = Aw;
            for (int i = 0; i < h; i++)
                for (int j = 0; j < w; j++)
                {
                    int k = (p * h + i) * w + j;
                    od[k] = xd[k] * awd[p * w + j] * ahd[p * h + i];
                }
        }
    }

    /// <summary>
    /// As mbv2_ca.py's forward exports: the two pools, Transpose of x_w, Concat on axis 2, conv1, bn1, h_swish, two
    /// Slices, Transpose back, conv2 / conv3, Sigmoid, then (x·a_w)·a_h.
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
        var dx = x.ZerosLike();
        var dah = new DenseTensor<T>(n, c, h, 1);
        var daw = new DenseTensor<T>(n, c, 1, w);
        T[] dxd = dx.Data, dahd = dah.Data, dawd = daw.Data;
        Compute.For(n * c, p =>
        {
            // out = (x·a_w)·a_h: ∂a_h = Σ_w ∂out·(x·a_w); ∂(x·a_w) = ∂out·a_h; ∂a_w = Σ_h ∂(x·a_w)·x; ∂x = ∂(x·a_w)·a_w.
            for (int i = 0; i < h; i++)
            {
                T acc = T.Zero;
                for (int j = 0; j < w; j++)
                {
                    int k = (p * h + i) * w + j;
                    acc += gd[k] * (xd[k] * awd[p * w + j]);
                }
                dahd[p * h + i] = acc;
            }
            for (int j = 0; j < w; j++)
            {
                T acc = T.Zero;
                for (int i = 0; i < h; i++)
                {
                    int k = (p * h + i) * w + j;
                    acc += gd[k] * ahd[p * h + i] * xd[k];
                }
                dawd[p * w + j] = acc;
            }
            for (int i = 0; i < h; i++)
                for (int j = 0; j < w; j++)
                {
                    int k = (p * h + i) * w + j;
                    dxd[k] = gd[k] * ahd[p * h + i] * awd[p * w + j];
                }
        });
        var dzh = Zip(dah, ah, (g, s) => g * Ops.Activations.SigmoidGradFromOutput(s));
        var dzw = Zip(daw, aw, (g, s) => g * Ops.Activations.SigmoidGradFromOutput(s));
        var dyh = _conv2.Backward(dzh, pass);
        var dyw = _conv3.Backward(dzw, pass);
        int mip = dyh.Dim(1);
        var dcat = Concat(dyh.Data, dyw.Data, n, mip, h, w);
        var dxcat = _conv1.Backward(_bn1.Backward(_relu.Backward(dcat, pass), pass), pass);
        var (dxh, dxw) = Split(dxcat.Data, n * c, h, w, new DenseTensor<T>(n, c, h, 1), new DenseTensor<T>(n, c, 1, w));
        var viaH = _poolH.Backward(dxh, pass).Data;
        var viaW = _poolW.Backward(dxw, pass).Data;
        for (int k = 0; k < dxd.Length; k++) dxd[k] = dxd[k] + viaH[k] + viaW[k];
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
    private static DenseTensor<T> Sigmoid(DenseTensor<T> t, DenseTensor<T> into)
    {
        for (int i = 0; i < into.Length; i++) into.Data[i] = Ops.Activations.Sigmoid(t.Data[i]);
        return into;
    }

    private static DenseTensor<T> Zip(DenseTensor<T> a, DenseTensor<T> b, Func<T, T, T> f)
    {
        var r = a.ZerosLike();
        for (int i = 0; i < r.Length; i++) r.Data[i] = f(a.Data[i], b.Data[i]);
        return r;
    }
}
