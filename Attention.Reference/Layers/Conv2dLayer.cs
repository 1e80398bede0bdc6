using Attention.Reference.Ops;
using Attention.Reference.Kernels.Conv;

namespace Attention.Reference.Layers;

/// <summary>
/// <c>nn.Conv2d</c>: parameters <c>weight</c> [O, I/groups, kh, kw] and optional <c>bias</c> [O]. Both kernel paths
/// run the deterministic blocked kernel <see cref="Conv2d"/>, whose summation order docs/derivations/conv2d.md
/// defines (Eqs. (conv.7)–(conv.12)); <see cref="Conv2dSpec"/> is the teaching reference held against it in tests.
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class Conv2dLayer<T> : Layer<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>Creates the layer; parameters start at zero until a state_dict is loaded.</summary>
    public Conv2dLayer(Conv2dGeometry geometry, bool bias)
    {
        geometry.Validate();
        Geometry = geometry;
        Weight = Param("weight", geometry.WeightShape);
        Bias = bias ? Param("bias", [geometry.OutChannels]) : null;
    }

    /// <summary>The convolution's geometry.</summary>
    public Conv2dGeometry Geometry { get; }

    /// <summary><c>weight</c>.</summary>
    public Parameter<T> Weight { get; }

    /// <summary><c>bias</c>, or null.</summary>
    public Parameter<T>? Bias { get; }

    /// <inheritdoc />
    public override string Kind => "Conv2d";

    /// <inheritdoc />
    protected override int[] OnInferShape(int[] input, ShapePlan plan)
    {
        RequireNchw(input, Geometry.InChannels);
        var (ho, wo) = Geometry.OutputSize(input[2], input[3]);
        return [input[0], Geometry.OutChannels, ho, wo];
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnForward(DenseTensor<T> x, Pass<T> pass)
    {
        // Eq. (conv.1): y = conv(x, w) + b.
        var y = Conv2d.Forward(x, Weight.Value, Bias?.Value, Geometry);
        pass.Trace?.Forward("conv.1", "y", y);
        Save(pass, x);
        return y;
    }

    /// <summary>Conv with the state_dict's weight and bias: the same kernel evaluates it.</summary>
    protected override string OnExport(IGraphWriter<T> writer, string input)
    {
        var g = Geometry;
        var s = writer.Shape(input);
        var (ho, wo) = g.OutputSize(s[2], s[3]);
        var inputs = new List<string> { input, writer.Tensor(KeyOf(Weight), Weight.Value) };
        if (Bias is not null) inputs.Add(writer.Tensor(KeyOf(Bias), Bias.Value));
        return writer.Node(this, "Conv", inputs, [s[0], g.OutChannels, ho, wo], new Dictionary<string, object>
        {
            ["dilations"] = new[] { g.Dilation.H, g.Dilation.W },
            ["group"] = g.Groups,
            ["kernel_shape"] = new[] { g.Kernel.H, g.Kernel.W },
            ["pads"] = new[] { g.Padding.H, g.Padding.W, g.Padding.H, g.Padding.W },
            ["strides"] = new[] { g.Stride.H, g.Stride.W },
        });
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnBackward(DenseTensor<T> dy, Pass<T> pass)
    {
        var x = Restore<DenseTensor<T>>(pass);
        var dx = Conv2d.BackwardInput(dy, Weight.Value, Geometry, x.Dim(2), x.Dim(3)); // Eq. (conv.4)
        pass.Trace?.Backward("conv.4", "x.grad", dx);
        var dw = Conv2d.BackwardWeight(x, dy, Geometry);                              // Eq. (conv.5)
        pass.Trace?.Backward("conv.5", "weight.grad", dw);
        Weight.Accumulate(dw);
        if (Bias is not null)
        {
            var db = Conv2d.BackwardBias(dy);                                          // Eq. (conv.6)
            pass.Trace?.Backward("conv.6", "bias.grad", db);
            Bias.Accumulate(db);
        }
        return dx;
    }
}
