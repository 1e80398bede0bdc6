namespace Attention.Reference.Onnx.Ops;

/// <summary>Shape: the input's dimensions as int64 (start and end, opset 15, select a range).</summary>
internal sealed class Shape : IOnnxOp
{
    public string OpType => "Shape";

    public OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>
    {
        var dims = node.Input(0).Shape.Select(d => (long)d).ToArray();
        int r = dims.Length;
        long start = node.Int("start", 0), end = node.Int("end", r);
        int s = (int)Math.Clamp(start < 0 ? start + r : start, 0, r), e = (int)Math.Clamp(end < 0 ? end + r : end, 0, r);
        return [OnnxIndex.Int64s<T>(dims[s..Math.Max(s, e)])];
    }
}

/// <summary>Reshape to the <c>shape</c> input: 0 copies the input's dimension (unless allowzero = 1), one −1 is inferred.</summary>
internal sealed class Reshape : IOnnxOp
{
    public string OpType => "Reshape";

    public OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>
    {
        var x = node.Input(0);
        var spec = node.Opset >= 5 ? node.IntsInput(1) : node.Ints("shape") ?? throw node.Error("shape is missing");
        bool allowZero = node.Int("allowzero", 0) != 0;
        var shape = new int[spec.Length];
        int infer = -1;
        long known = 1;
        for (int i = 0; i < spec.Length; i++)
        {
            long v = spec[i];
            if (v == -1)
            {
                if (infer >= 0) throw node.Error($"shape [{string.Join(", ", spec)}] has more than one -1");
                infer = i;
                continue;
            }
            if (v == 0 && !allowZero)
            {
                if (i >= x.Rank) throw node.Error($"shape [{string.Join(", ", spec)}] copies dimension {i} of {x}, which has none");
                v = x.Shape[i];
            }
            shape[i] = OnnxIndex.Dim(v, "dimension");
            known = checked(known * shape[i]);
        }
        if (infer >= 0)
        {
            if (known == 0 || x.Length % known != 0) throw node.Error($"cannot reshape {x} to [{string.Join(", ", spec)}]");
            shape[infer] = (int)(x.Length / known);
        }
        if (ShapeUtil.Volume(shape, "shape") != x.Length) throw node.Error($"cannot reshape {x} to [{string.Join(", ", spec)}]");
        return [OnnxIndex.WithShape(x, shape)];
    }
}

/// <summary>Flatten at <c>axis</c> (default 1): [d0·…·d(axis−1), d(axis)·…].</summary>
internal sealed class Flatten : IOnnxOp
{
    public string OpType => "Flatten";

    public OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>
    {
        var x = node.Input(0);
        long axis = node.Int("axis", 1);
        if (axis < -x.Rank || axis > x.Rank) throw node.Error($"axis {axis} is out of range for {x}");
        int a = (int)(axis < 0 ? axis + x.Rank : axis);
        int outer = x.Shape[..a].Aggregate(1, (p, d) => p * d);
        return [OnnxIndex.WithShape(x, [outer, outer == 0 ? 0 : x.Length / outer])];
    }
}

/// <summary>Concat along <c>axis</c>, inputs in order.</summary>
internal sealed class Concat : IOnnxOp
{
    public string OpType => "Concat";

    public OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>
    {
        var parts = Enumerable.Range(0, node.InputCount).Select(node.Input).ToList();
        var first = parts[0];
        int axis = OnnxIndex.Axis(node.Int("axis", 0), first.Rank, "axis");
        foreach (var p in parts)
            if (p.Rank != first.Rank || p.IsReal != first.IsReal || p.IsInteger != first.IsInteger
                || Enumerable.Range(0, p.Rank).Any(d => d != axis && p.Shape[d] != first.Shape[d]))
                throw node.Error($"cannot concatenate {string.Join(", ", parts)} along axis {axis}");
        var shape = (int[])first.Shape.Clone();
        shape[axis] = parts.Sum(p => p.Shape[axis]);
        int outer = shape[..axis].Aggregate(1, (p, d) => p * d), inner = shape[(axis + 1)..].Aggregate(1, (p, d) => p * d);
        var index = new List<(int Part, int At)>(ShapeUtil.Volume(shape, "shape"));
        for (int o = 0; o < outer; o++)
            for (int k = 0; k < parts.Count; k++)
            {
                int rows = parts[k].Shape[axis] * inner;
                for (int i = 0; i < rows; i++) index.Add((k, o * rows + i));
            }
        if (first.Reals is not null)
            return [OnnxValue<T>.Real(first.ElementType, shape, index.Select(t => parts[t.Part].Reals![t.At]).ToArray())];
        if (first.Ints is not null)
            return [OnnxValue<T>.Integer(first.ElementType, shape, index.Select(t => parts[t.Part].Ints![t.At]).ToArray())];
        return [OnnxValue<T>.Boolean(shape, index.Select(t => parts[t.Part].Bools![t.At]).ToArray())];
    }
}

/// <summary>
/// Split along <c>axis</c>: sizes from the <c>split</c> input (opset 13+) or attribute, else equal parts, one per
/// output (num_outputs, opset 18: the last part may be smaller).
/// </summary>
internal sealed class Split : IOnnxOp
{
    public string OpType => "Split";

    public OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>
    {
        var x = node.Input(0);
        int axis = OnnxIndex.Axis(node.Int("axis", 0), x.Rank, "axis");
        int len = x.Shape[axis], parts = node.OutputCount;
        long[]? sizes = node.Optional(1) is not null ? node.IntsInput(1) : node.Ints("split");
        if (sizes is null)
        {
            if (parts < 1) throw node.Error("Split has no outputs");
        int each = (len + parts - 1) / parts;
            sizes = Enumerable.Range(0, parts).Select(i => (long)Math.Max(0, Math.Min(each, len - i * each))).ToArray();
        }
        if (sizes.Length != parts || sizes.Any(s => s < 0) || sizes.Sum() != len)
            throw node.Error($"split sizes [{string.Join(", ", sizes)}] do not divide axis {axis} of {x} into {parts} outputs");
        var outs = new OnnxValue<T>?[parts];
        int start = 0;
        for (int k = 0; k < parts; k++)
        {
            outs[k] = Slice.Range(x, axis, start, (int)sizes[k], 1);
            start += (int)sizes[k];
        }
        return outs;
    }
}

/// <summary>
/// Slice: starts, ends, axes, steps (inputs since opset 10, attributes before), clamped as the spec says (negative
/// indices count from the end; a negative step walks backwards).
/// </summary>
internal sealed class Slice : IOnnxOp
{
    public string OpType => "Slice";

    public OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>
    {
        var x = node.Input(0);
        long[] starts, ends;
        long[]? axes, steps = null;
        if (node.Opset >= 10)
        {
            starts = node.IntsInput(1);
            ends = node.IntsInput(2);
            axes = node.Optional(3) is null ? null : node.IntsInput(3);
            steps = node.Optional(4) is null ? null : node.IntsInput(4);
        }
        else
        {
            starts = node.Ints("starts") ?? throw node.Error("starts is missing");
            ends = node.Ints("ends") ?? throw node.Error("ends is missing");
            axes = node.Ints("axes");
        }
        axes ??= Enumerable.Range(0, starts.Length).Select(a => (long)a).ToArray();
        steps ??= Enumerable.Repeat(1L, starts.Length).ToArray();
        if (ends.Length != starts.Length || axes.Length != starts.Length || steps.Length != starts.Length)
            throw node.Error("starts, ends, axes and steps must have the same length");
        var begin = new int[x.Rank];
        var count = (int[])x.Shape.Clone();
        var step = Enumerable.Repeat(1, x.Rank).ToArray();
        var seen = new bool[x.Rank];
        for (int i = 0; i < starts.Length; i++)
        {
            int a = OnnxIndex.Axis(axes[i], x.Rank, "axis");
            if (seen[a]) throw node.Error($"axis {axes[i]} is listed twice");
            seen[a] = true;
            long dim = x.Shape[a], st = steps[i];
            if (st == 0) throw node.Error("a step is 0");
            long s = starts[i] < 0 ? starts[i] + dim : starts[i], e = ends[i] < 0 ? ends[i] + dim : ends[i];
            if (st > 0) { s = Math.Clamp(s, 0, dim); e = Math.Clamp(e, 0, dim); }
            else { s = Math.Clamp(s, 0, dim - 1); e = Math.Clamp(e, -1, dim - 1); }
            long n = st > 0 ? Math.Max(0, (e - s + st - 1) / st) : Math.Max(0, (s - e + (-st) - 1) / (-st));
            begin[a] = (int)s;
            count[a] = (int)n;
            step[a] = checked((int)st);
        }
        return [Take(x, begin, count, step)];
    }

    /// <summary>Elements [start, start + count) of one axis.</summary>
    internal static OnnxValue<T> Range<T>(OnnxValue<T> x, int axis, int start, int count, int step) where T : IFloatingPointIeee754<T>
    {
        var begin = new int[x.Rank];
        var counts = (int[])x.Shape.Clone();
        var steps = Enumerable.Repeat(1, x.Rank).ToArray();
        begin[axis] = start;
        counts[axis] = count;
        steps[axis] = step;
        return Take(x, begin, counts, steps);
    }

    private static OnnxValue<T> Take<T>(OnnxValue<T> x, int[] begin, int[] count, int[] step) where T : IFloatingPointIeee754<T>
    {
        var strides = OnnxIndex.Strides(x.Shape);
        int @base = begin.Select((b, d) => b * strides[d]).Sum();
        int n = ShapeUtil.Volume(count, "shape");
        var index = n == 0 ? [] : OnnxIndex.Walk(count, strides.Select((s, d) => s * step[d]).ToArray(), @base, n);
        return OnnxIndex.Take(x, count, index);
    }
}

/// <summary>Transpose by <c>perm</c> (default: reversed axes).</summary>
internal sealed class Transpose : IOnnxOp
{
    public string OpType => "Transpose";

    public OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>
    {
        var x = node.Input(0);
        var perm = node.Ints("perm")?.Select(p => (int)p).ToArray() ?? Enumerable.Range(0, x.Rank).Reverse().ToArray();
        if (perm.Length != x.Rank || perm.Order().Where((p, i) => p != i).Any()) throw node.Error($"perm [{string.Join(", ", perm)}] is not a permutation of {x.Rank} axes");
        var strides = OnnxIndex.Strides(x.Shape);
        var shape = perm.Select(p => x.Shape[p]).ToArray();
        int n = x.Length;
        var index = n == 0 ? [] : OnnxIndex.Walk(shape, perm.Select(p => strides[p]).ToArray(), 0, n);
        return [OnnxIndex.Take(x, shape, index)];
    }
}

/// <summary>Squeeze the listed size-1 axes (attribute before opset 13, input since), or every size-1 axis.</summary>
internal sealed class Squeeze : IOnnxOp
{
    public string OpType => "Squeeze";

    public OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>
    {
        var x = node.Input(0);
        var axes = node.Optional(1) is not null ? node.IntsInput(1) : node.Ints("axes");
        var drop = new bool[x.Rank];
        if (axes is null) for (int d = 0; d < x.Rank; d++) drop[d] = x.Shape[d] == 1;
        else
            foreach (var a in axes)
            {
                int d = OnnxIndex.Axis(a, x.Rank, "axis");
                if (x.Shape[d] != 1) throw node.Error($"axis {a} of {x} is not of size 1");
                drop[d] = true;
            }
        return [OnnxIndex.WithShape(x, x.Shape.Where((_, d) => !drop[d]).ToArray())];
    }
}

/// <summary>Unsqueeze: insert size-1 axes at the listed positions of the output (attribute before opset 13, input since).</summary>
internal sealed class Unsqueeze : IOnnxOp
{
    public string OpType => "Unsqueeze";

    public OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>
    {
        var x = node.Input(0);
        var axes = (node.Optional(1) is not null ? node.IntsInput(1) : node.Ints("axes")) ?? throw node.Error("axes are missing");
        int rank = x.Rank + axes.Length;
        var insert = new bool[rank];
        foreach (var a in axes)
        {
            int d = OnnxIndex.Axis(a, rank, "axis");
            if (insert[d]) throw node.Error($"axis {a} is listed twice");
            insert[d] = true;
        }
        var shape = new int[rank];
        for (int d = 0, k = 0; d < rank; d++) shape[d] = insert[d] ? 1 : x.Shape[k++];
        return [OnnxIndex.WithShape(x, shape)];
    }
}

/// <summary>Expand to the broadcast of the input's shape and the <c>shape</c> input (both directions, as numpy).</summary>
internal sealed class Expand : IOnnxOp
{
    public string OpType => "Expand";

    public OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>
    {
        var x = node.Input(0);
        var target = node.IntsInput(1).Select(v => OnnxIndex.Dim(v, "dimension")).ToArray();
        var shape = OnnxIndex.Broadcast(x.Shape, target);
        OnnxIndex.CheckedVolume(shape.Select(d => (long)d), "the expanded shape");
        return [OnnxIndex.Take(x, shape, OnnxIndex.BroadcastIndex(shape, x.Shape))];
    }
}

/// <summary>Gather along <c>axis</c> with integer indices (negative ones count from the end).</summary>
internal sealed class Gather : IOnnxOp
{
    public string OpType => "Gather";

    public OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>
    {
        var x = node.Input(0);
        var idx = node.Input(1);
        var ids = idx.Ints ?? throw node.Error($"indices must be integers, got {idx}");
        int axis = OnnxIndex.Axis(node.Int("axis", 0), x.Rank, "axis");
        int dim = x.Shape[axis];
        int outer = x.Shape[..axis].Aggregate(1, (p, d) => p * d), inner = x.Shape[(axis + 1)..].Aggregate(1, (p, d) => p * d);
        var shape = x.Shape[..axis].Concat(idx.Shape).Concat(x.Shape[(axis + 1)..]).ToArray();
        var index = new int[checked(outer * ids.Length * inner)];
        int at = 0;
        for (int o = 0; o < outer; o++)
            foreach (var raw in ids)
            {
                long i = raw < 0 ? raw + dim : raw;
                if (i < 0 || i >= dim) throw node.Error($"index {raw} is out of range for axis {axis} of size {dim}");
                for (int k = 0; k < inner; k++) index[at++] = (o * dim + (int)i) * inner + k;
            }
        return [OnnxIndex.Take(x, shape, index)];
    }
}

/// <summary>Constant: the <c>value</c> tensor (or value_float(s), value_int(s)).</summary>
internal sealed class Constant : IOnnxOp
{
    public string OpType => "Constant";

    public OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>
    {
        if (node.Tensor("value") is { } t) return [OnnxTensors.ToValue<T>(t, $"{node.Source}: {node.Describe}: value")];
        if (node.Has("value_float")) return [OnnxValue<T>.Real(OnnxElementType.Float, [], [node.Float("value_float", 0f)])];
        if (node.Has("value_int")) return [OnnxValue<T>.Integer(OnnxElementType.Int64, [], [node.Int("value_int", 0)])];
        if (node.Ints("value_ints") is { } ints) return [OnnxIndex.Int64s<T>(ints)];
        throw node.Error($"holds no supported value (attributes: {string.Join(", ", node.AttributeNames)})");
    }
}

/// <summary>ConstantOfShape: a tensor of the given shape filled with <c>value</c> (default float 0).</summary>
internal sealed class ConstantOfShape : IOnnxOp
{
    public string OpType => "ConstantOfShape";

    public OnnxValue<T>?[] Run<T>(OnnxNode<T> node) where T : IFloatingPointIeee754<T>
    {
        var dims = node.IntsInput(0);
        int n = OnnxIndex.CheckedVolume(dims, "the shape");
        var shape = dims.Select(v => OnnxIndex.Dim(v, "dimension")).ToArray();
        var value = node.Tensor("value") is { } t ? OnnxTensors.ToValue<T>(t, $"{node.Source}: {node.Describe}: value") : null;
        if (value is not null && value.Length != 1) throw node.Error($"value must hold one element, got {value}");
        if (value is null) return [OnnxValue<T>.Real(OnnxElementType.Float, shape, new T[n])];
        return [OnnxIndex.Take(value, shape, new int[n])];
    }
}
