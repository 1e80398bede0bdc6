using System.Globalization;
using Attention.Reference.Kernels.Conv;

namespace Attention.Reference.Layers;

/// <summary>
/// A module whose forward runs a list of layers one after another: <c>nn.Sequential</c> (children named "0",
/// "1", ... or by an <c>OrderedDict</c>), and every model whose <c>forward</c> is a plain chain (timm's ResNet,
/// the legacy SENet, the GCT ResNet's stem). The run order may hold unregistered helpers (PyTorch functionals such
/// as <c>F.relu_</c> or <c>x.view(N, -1)</c>: they run, but have no name and are never dumped) and may call a child
/// more than once. The backward runs the same list in reverse.
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class Sequential<T> : Layer<T> where T : IFloatingPointIeee754<T>
{
    private readonly List<Layer<T>> _run;

    /// <summary>Children named "0", "1", ...</summary>
    public Sequential(params Layer<T>[] layers)
        : this("Sequential", layers.Select((l, i) => (i.ToString(CultureInfo.InvariantCulture), l))) { }

    /// <summary>Named children, run in registration order.</summary>
    public Sequential(string kind, IEnumerable<(string Name, Layer<T> Layer)> children) : this(kind, children, null) { }

    /// <summary>Named children and an explicit run order (which may include unregistered helpers).</summary>
    public Sequential(string kind, IEnumerable<(string Name, Layer<T> Layer)> children, IEnumerable<Layer<T>>? run)
    {
        Kind = kind;
        var registered = new List<Layer<T>>();
        foreach (var (name, layer) in children) registered.Add(Child(name, layer));
        _run = run?.ToList() ?? registered;
    }

    /// <inheritdoc />
    public override string Kind { get; }

    /// <summary>The i-th layer of the run order.</summary>
    public Layer<T> this[int i] => _run[i];

    /// <summary>The number of layers in the run order.</summary>
    public int Count => _run.Count;

    /// <summary>The run order.</summary>
    internal IReadOnlyList<Layer<T>> Run => _run;

    /// <inheritdoc />
    protected override DenseTensor<T> OnForward(DenseTensor<T> x, Pass<T> pass)
    {
        foreach (var layer in _run) x = layer.Forward(x, pass);
        return x;
    }

    /// <inheritdoc />
    protected override int[] OnInferShape(int[] input, ShapePlan plan)
    {
        foreach (var layer in _run) input = layer.InferShape(input, plan);
        return input;
    }

    /// <inheritdoc />
    protected override string OnExport(IGraphWriter<T> writer, string input)
    {
        foreach (var layer in _run) input = layer.Export(writer, input);
        return input;
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnBackward(DenseTensor<T> dy, Pass<T> pass)
    {
        for (int i = _run.Count - 1; i >= 0; i--) dy = _run[i].Backward(dy, pass);
        return dy;
    }
}

/// <summary>
/// A residual block: y = after(branch(x) + shortcut(x)), where the branch is a list of layers run in order, the
/// shortcut is a layer or the identity, and <c>after</c> is an optional activation. The shortcut is evaluated
/// where the reference code evaluates it (before branch element <c>shortcutAt</c>; by default after the whole
/// branch), which fixes the order of module outputs in a dump. Covers timm's <c>Bottleneck</c>, the legacy
/// <c>SEResNetBottleneck</c> and the GCT ResNet's bottleneck; docs/derivations/se.md, Eqs. (block.1)–(block.19).
/// <para>
/// Backward: ∂v = after'(∂y); ∂x = branch-backward(∂v) + shortcut-backward(∂v) (one addition per element; the
/// shortcut's backward runs first, as the derivation numbers it).
/// </para>
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class Residual<T> : Layer<T> where T : IFloatingPointIeee754<T>
{
    private readonly List<Layer<T>> _branch;
    private readonly Layer<T>? _shortcut;
    private readonly Layer<T>? _after;
    private readonly int _shortcutAt;
    private readonly (string Equation, string Name)? _inputGradientTrace;
    private readonly bool _sum;

    /// <summary>Creates the block.</summary>
    /// <param name="kind">The class name (<c>Bottleneck</c>, ...).</param>
    /// <param name="children">The registered children in the reference's registration order.</param>
    /// <param name="branch">The residual branch's run order (children, repeated children, or unregistered helpers).</param>
    /// <param name="shortcut">The shortcut (downsample), or null for the identity.</param>
    /// <param name="after">The activation after the sum, or null.</param>
    /// <param name="shortcutAt">The shortcut runs before branch element <paramref name="shortcutAt"/> (null: after the branch).</param>
    /// <param name="inputGradientTrace">Where the trace records ∂L/∂x (equation, name), or null.</param>
    /// <param name="sum">False for a block without the residual connection (an inverted residual whose shape
    /// changes): y = after(branch(x)).</param>
    public Residual(string kind, IEnumerable<(string Name, Layer<T> Layer)> children, IEnumerable<Layer<T>> branch,
        Layer<T>? shortcut, Layer<T>? after, int? shortcutAt = null, (string Equation, string Name)? inputGradientTrace = null,
        bool sum = true)
    {
        _sum = sum;
        _inputGradientTrace = inputGradientTrace;
        Kind = kind;
        foreach (var (name, layer) in children) Child(name, layer);
        _branch = branch.ToList();
        _shortcut = shortcut;
        _after = after;
        _shortcutAt = shortcutAt ?? _branch.Count;
    }

    /// <inheritdoc />
    public override string Kind { get; }

    /// <summary>The branch's run order.</summary>
    internal IReadOnlyList<Layer<T>> Branch => _branch;

    /// <summary>The shortcut, or null for the identity.</summary>
    internal Layer<T>? Shortcut => _shortcut;

    /// <summary>The activation after the sum, or null.</summary>
    internal Layer<T>? After => _after;

    /// <summary>False for a block without the residual connection.</summary>
    internal bool Sum => _sum;

    /// <inheritdoc />
    protected override int[] OnInferShape(int[] input, ShapePlan plan)
    {
        var h = input;
        foreach (var layer in _branch) h = layer.InferShape(h, plan);
        if (_sum)
        {
            var sc = _shortcut?.InferShape(input, plan) ?? input;
            if (!sc.AsSpan().SequenceEqual(h)) throw new ShapeMismatchException(DisplayName + " shortcut", ShapeUtil.Format(h), sc);
        }
        return _after?.InferShape(h, plan) ?? h;
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnForward(DenseTensor<T> x, Pass<T> pass)
    {
        var h = x;
        DenseTensor<T>? sc = null;
        for (int i = 0; i <= _branch.Count; i++)
        {
            if (i == _shortcutAt && _sum) sc = _shortcut?.Forward(x, pass) ?? x;
            if (i < _branch.Count) h = _branch[i].Forward(h, pass);
        }
        var v = _sum ? TensorMath.Add(h, sc!, DisplayName + " residual sum") : h;
        return _after?.Forward(v, pass) ?? v;
    }

    /// <summary>The branch, the shortcut where the forward evaluates it, Add(branch, shortcut), then the activation.</summary>
    protected override string OnExport(IGraphWriter<T> writer, string input)
    {
        string h = input;
        string? sc = null;
        for (int i = 0; i <= _branch.Count; i++)
        {
            if (i == _shortcutAt && _sum) sc = _shortcut?.Export(writer, input) ?? input;
            if (i < _branch.Count) h = _branch[i].Export(writer, h);
        }
        string v = _sum ? writer.Node(this, "Add", [h, sc!], writer.Shape(h)) : h;
        return _after?.Export(writer, v) ?? v;
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnBackward(DenseTensor<T> dy, Pass<T> pass)
    {
        var dv = _after?.Backward(dy, pass) ?? dy;
        var dsc = _sum ? _shortcut?.Backward(dv, pass) ?? dv : null;
        var dh = dv;
        for (int i = _branch.Count - 1; i >= 0; i--) dh = _branch[i].Backward(dh, pass);
        var dx = dsc is null ? dh : TensorMath.Add(dh, dsc, DisplayName + " input gradient");
        if (_inputGradientTrace is var (eq, name)) pass.Trace?.Backward(eq, name, dx);
        return dx;
    }
}

/// <summary>Elementwise helpers shared by the blocks: the residual sum (one addition per element, order-free).</summary>
public static class TensorMath
{
    /// <summary>a + b, elementwise, into a new tensor (shapes must agree).</summary>
    public static DenseTensor<T> Add<T>(DenseTensor<T> a, DenseTensor<T> b, string what = "residual sum") where T : IFloatingPointIeee754<T>
    {
        if (!a.HasShape(b.Shape)) throw new ShapeMismatchException(what, a.ShapeString, b.ShapeArray());
        var r = a.ZerosLike();
        T[] ad = a.Data, bd = b.Data, rd = r.Data;
        Chunks.For(rd.Length, (lo, hi) =>
        {
            for (int i = lo; i < hi; i++) rd[i] = ad[i] + bd[i];
        });
        return r;
    }
}
