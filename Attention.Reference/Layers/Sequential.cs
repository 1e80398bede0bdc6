using System.Globalization;
using System.Numerics;
using Attention.Reference.Tensors;
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
public class Sequential<T> : Layer<T> where T : IFloatingPointIeee754<T>
{
    /// <inheritdoc />
    protected internal override bool OutputIsOwnBuffer => _run.Count > 0 && _run[^1].OutputIsOwnBuffer;

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

    /// <inheritdoc />
    protected override DenseTensor<T> OnForward(DenseTensor<T> x, Pass<T> pass)
    {
        foreach (var layer in _run) x = layer.Forward(x, pass);
        return x;
    }

    /// <inheritdoc />
    protected internal override void FuseForInference()
    {
        FuseRun(_run);
        MarkInference();
    }

    /// <summary>
    /// Inference fusion across a container boundary: when this is a plain Sequential whose run (already fused) ends
    /// in an unfused convolution, a copy of it for one call site whose last element is that convolution folded with
    /// <paramref name="bn"/> (and <paramref name="activation"/>) that follow this container in its parent's run; else
    /// null. The copy has this container's path and no registered children (like every fused layer).
    /// </summary>
    internal Sequential<T>? WithLastFolded(BatchNorm2dLayer<T> bn, IInPlaceActivation<T>? activation)
    {
        if (GetType() != typeof(Sequential<T>) || _run.Count == 0 || _run[^1] is not Conv2dLayer<T> conv) return null;
        var run = new List<Layer<T>>(_run);
        run[^1] = new FusedConv2d<T>(conv, bn, activation);
        var folded = new Sequential<T>(Kind, [], run) { Path = Path };
        folded.MarkInference();
        return folded;
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
    /// <inheritdoc />
    protected internal override bool OutputIsOwnBuffer => _sum;

    private readonly List<Layer<T>> _branch;
    private Layer<T>? _shortcut;
    private readonly Layer<T>? _shortcutOriginal;
    private readonly Layer<T>? _after;
    private int _shortcutAt;
    private bool _branchOwnsOutput;
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
        _shortcutOriginal = shortcut;
        _after = after;
        _shortcutAt = shortcutAt ?? _branch.Count;
    }

    /// <inheritdoc />
    public override string Kind { get; }

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
        if (Inference && _sum && pass.InPlaceAllowed && _branch.Count > 1 && _branch[^1] is SqueezeExcite<T> se && se.InputOwned
            && _branch[^2].OutputIsOwnBuffer)
            return SeResidual(x, se, pass);
        var h = x;
        DenseTensor<T>? sc = null;
        for (int i = 0; i <= _branch.Count; i++)
        {
            if (i == _shortcutAt && _sum) sc = _shortcut?.Forward(x, pass) ?? x;
            if (i < _branch.Count) h = _branch[i].Forward(h, pass);
        }
        if (Inference && _sum && pass.InPlaceAllowed && _branchOwnsOutput && !ReferenceEquals(h, x) && !ReferenceEquals(h, sc))
        {
            // Inference plan: the branch output is this block's own buffer: add the shortcut and activate in place.
            if (!h.HasShape(sc!.Shape)) throw new ShapeMismatchException(DisplayName + " residual sum", h.ShapeString, sc.ShapeArray());
            // The activation after the sum runs on each chunk right after its addition, while it is in cache.
            var epilogue = _after as IConvEpilogue<T>;
            Chunks.For(h.Data.Length, new AddInPlace { H = h.Data, S = sc.Data, After = epilogue });
            if (epilogue is not null) return h;
            if (_after is IInPlaceActivation<T> act) { act.ApplyInPlace(h); return h; }
            return _after?.Forward(h, pass) ?? h;
        }
        var v = _sum ? TensorMath.Add(h, sc!, DisplayName + " residual sum") : h;
        return _after?.Forward(v, pass) ?? v;
    }

    /// <summary>
    /// Inference plan, a branch ending in SE: the branch up to the SE, its gate, the shortcut, then
    /// y = after(h·s + shortcut) in one pass per (n, c) plane — the operations of the unfused blocks in their order.
    /// </summary>
    private DenseTensor<T> SeResidual(DenseTensor<T> x, SqueezeExcite<T> se, Pass<T> pass)
    {
        var h = x;
        for (int i = 0; i < _branch.Count - 1; i++) h = _branch[i].Forward(h, pass);
        var s = se.Gate(h, pass);
        var sc = _shortcut?.Forward(x, pass) ?? x;
        if (!h.HasShape(sc.Shape)) throw new ShapeMismatchException(DisplayName + " residual sum", h.ShapeString, sc.ShapeArray());
        Compute.For(h.Dim(0) * h.Dim(1), new ScaleAddPlane
        {
            H = h.Data, S = s.Data, Shortcut = sc.Data, Plane = h.Dim(2) * h.Dim(3), After = _after as IConvEpilogue<T>,
        });
        if (_after is null || _after is IConvEpilogue<T>) return h;
        return _after is IInPlaceActivation<T> act ? Apply(act, h) : _after.Forward(h, pass);

        static DenseTensor<T> Apply(IInPlaceActivation<T> a, DenseTensor<T> t)
        {
            a.ApplyInPlace(t);
            return t;
        }
    }

    /// <summary>One (n, c) plane: h = after(h·s[p] + shortcut).</summary>
    private struct ScaleAddPlane : IForBody
    {
        public T[] H, S, Shortcut;
        public int Plane;
        public IConvEpilogue<T>? After;

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int p)
        {
            int o = p * Plane;
            var h = H.AsSpan(o, Plane);
            Ops.SpanArithmetic.ScaleAdd(h, S[p], Shortcut.AsSpan(o, Plane));
            After?.Apply(h);
        }
    }

    /// <summary>h += s over a chunk.</summary>
    private struct AddInPlace : Chunks.IBody
    {
        public T[] H, S;
        public IConvEpilogue<T>? After;

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int lo, int hi)
        {
            var h = H.AsSpan(lo, hi - lo);
            Ops.SpanArithmetic.Add(h, S.AsSpan(lo, hi - lo));
            After?.Apply(h);
        }
    }

    /// <inheritdoc />
    protected internal override void FuseForInference()
    {
        FuseRun(_branch);
        _branchOwnsOutput = _branch.Count > 0 && _branch[^1].OutputIsOwnBuffer;
        // The shortcut depends on x alone: where it is evaluated changes only a dump's order, which inference has none of.
        _shortcutAt = _branch.Count;
        if (_shortcutOriginal is { } s)
        {
            var list = new List<Layer<T>> { s };
            FuseRun(list);
            _shortcut = list[0];
        }
        _after?.FuseForInference();
        MarkInference();
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
