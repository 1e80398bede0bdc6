using System.Numerics;
using Attention.Reference.Modules;
using Attention.Reference.Tensors;

namespace Attention.Reference.Layers;

/// <summary>
/// The authors' <c>CoordAtt(inp, oup, reduction)</c> (coordatt.py): children <c>conv1</c> (1x1, C → mip, bias),
/// <c>bn1</c> (BatchNorm2d(mip)), <c>conv_h</c> and <c>conv_w</c> (1x1, mip → C, bias); the h_swish between bn1 and
/// the convolutions and both sigmoids are functionals. Forward and backward are <see cref="CoordinateAttention"/>'s
/// (docs/derivations/ca.md); float32 on the fast path runs <see cref="CoordinateAttentionFast"/>. In training mode
/// bn1 normalises with batch statistics and its running statistics are updated.
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class CoordAttLayer<T> : Layer<T> where T : IFloatingPointIeee754<T>
{
    private readonly Linear<T> _conv1, _convH, _convW;
    private readonly BatchNorm2dLayer<T> _bn1;

    /// <summary>Creates the module.</summary>
    public CoordAttLayer(int channels, int mip, double eps = 1e-5, double momentum = 0.1)
    {
        _conv1 = Child("conv1", new Linear<T>(channels, mip, true, convForm: true));
        _bn1 = Child("bn1", new BatchNorm2dLayer<T>(mip, eps, momentum));
        _convH = Child("conv_h", new Linear<T>(mip, channels, true, convForm: true));
        _convW = Child("conv_w", new Linear<T>(mip, channels, true, convForm: true));
        Channels = channels;
        Mip = mip;
    }

    /// <summary>C.</summary>
    public int Channels { get; }

    /// <summary>The hidden width.</summary>
    public int Mip { get; }

    /// <inheritdoc />
    public override string Kind => "CoordAtt";

    /// <inheritdoc />
    protected override int[] OnInferShape(int[] input, ShapePlan plan)
    {
        RequireNchw(input, Channels);
        return input;
    }

    private CoordinateAttentionParameters<T> Parameters() => new()
    {
        Conv1Weight = _conv1.Weight.Value.Reshape(Mip, Channels), Conv1Bias = _conv1.Bias!.Value,
        BnWeight = _bn1.Weight.Value, BnBias = _bn1.Bias.Value,
        BnRunningMean = _bn1.RunningMean.Value, BnRunningVar = _bn1.RunningVar.Value,
        ConvHWeight = _convH.Weight.Value.Reshape(Channels, Mip), ConvHBias = _convH.Bias!.Value,
        ConvWWeight = _convW.Weight.Value.Reshape(Channels, Mip), ConvWBias = _convW.Bias!.Value,
    };

    /// <inheritdoc />
    protected override DenseTensor<T> OnForward(DenseTensor<T> x, Pass<T> pass)
    {
        var p = Parameters();
        CoordinateAttentionForward<T> f = pass.Kernels == KernelPath.Fast && typeof(T) == typeof(float) && pass.Trace is null
            ? (CoordinateAttentionForward<T>)(object)CoordinateAttentionFast.Forward((DenseTensor<float>)(object)x,
                (CoordinateAttentionParameters<float>)(object)p, pass.Training, _bn1.Eps, _bn1.Momentum)
            : CoordinateAttention.Forward(x, p, pass.Training, _bn1.Eps, _bn1.Momentum, pass.Trace);
        if (pass.Training)
        {
            _bn1.RunningMean.Value = f.RunningMean;
            _bn1.RunningVar.Value = f.RunningVar;
        }
        Save(pass, f);
        return f.Y;
    }

    /// <summary>
    /// Eqs. (ca.1)–(ca.10) as coordatt.py exports: AveragePool [1, W] and [H, 1], Transpose, Concat (axis 2), conv1, bn1
    /// (eval), h_swish = v·(Clip(v + 3, 0, 6)/6), two Slices, Transpose, conv_h / conv_w, Sigmoid, then (x·a_w)·a_h.
    /// </summary>
    protected override string OnExport(IGraphWriter<T> writer, string input)
    {
        var s = writer.Shape(input);
        int n = s[0], c = s[1], h = s[2], w = s[3];
        var perm = new Dictionary<string, object> { ["perm"] = new[] { 0, 1, 3, 2 } };
        string Pool(int[] k, int[] shape) => writer.Node(this, "AveragePool", [input], shape,
            new Dictionary<string, object> { ["kernel_shape"] = k, ["strides"] = k });
        string xh = Pool([1, w], [n, c, h, 1]);
        string xw = writer.Node(this, "Transpose", [Pool([h, 1], [n, c, 1, w])], [n, c, w, 1], perm);
        string cat = writer.Node(this, "Concat", [xh, xw], [n, c, h + w, 1], new Dictionary<string, object> { ["axis"] = 2L });
        string bn = _bn1.Export(writer, _conv1.Export(writer, cat));
        var bs = writer.Shape(bn);
        string hsig = writer.Node(this, "Div", [writer.Node(this, "Clip", [writer.Node(this, "Add", [bn, writer.Scalar(3)], bs),
            writer.Scalar(0), writer.Scalar(6)], bs), writer.Scalar(6)], bs);
        string act = writer.Node(this, "Mul", [bn, hsig], bs);
        int mip = bs[1];
        string fh = writer.Node(this, "Slice", [act, writer.Int64s(0), writer.Int64s(h), writer.Int64s(2)], [n, mip, h, 1]);
        string fw0 = writer.Node(this, "Slice", [act, writer.Int64s(h), writer.Int64s(h + w), writer.Int64s(2)], [n, mip, w, 1]);
        string fw = writer.Node(this, "Transpose", [fw0], [n, mip, 1, w], perm);
        string ah = writer.Node(this, "Sigmoid", [_convH.Export(writer, fh)], [n, c, h, 1]);
        string aw = writer.Node(this, "Sigmoid", [_convW.Export(writer, fw)], [n, c, 1, w]);
        return writer.Node(this, "Mul", [writer.Node(this, "Mul", [input, aw], s), ah], s);
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnBackward(DenseTensor<T> dy, Pass<T> pass)
    {
        var f = Restore<CoordinateAttentionForward<T>>(pass);
        var g = typeof(T) == typeof(float) && f is CoordinateAttentionForward<float> ff && IsFast(pass)
            ? (CoordinateAttentionGradients<T>)(object)CoordinateAttentionFast.Backward(ff, (DenseTensor<float>)(object)dy)
            : CoordinateAttention.Backward(f, dy, pass.Trace);
        _conv1.Weight.Accumulate(g.Conv1Weight.Reshape(_conv1.Weight.Value.ShapeArray()));
        _conv1.Bias!.Accumulate(g.Conv1Bias);
        _bn1.Weight.Accumulate(g.BnWeight);
        _bn1.Bias.Accumulate(g.BnBias);
        _convH.Weight.Accumulate(g.ConvHWeight.Reshape(_convH.Weight.Value.ShapeArray()));
        _convH.Bias!.Accumulate(g.ConvHBias);
        _convW.Weight.Accumulate(g.ConvWWeight.Reshape(_convW.Weight.Value.ShapeArray()));
        _convW.Bias!.Accumulate(g.ConvWBias);
        return g.X;
    }

    private static bool IsFast(Pass<T> pass) => pass.Kernels == KernelPath.Fast && pass.Trace is null;
}
