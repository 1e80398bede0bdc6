using System.CommandLine;

namespace Attention.Cli.Commands;

/// <summary><c>trace CASE [--steps all|forward|backward] [--show N] [--svg DIR]</c>.</summary>
public static class TraceCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(CliIO io)
    {
        var caseArg = new Argument<string>("case") { Description = "The case folder." };
        var cmd = new Command("trace", "Print each named intermediate of one case in the order of the derivation.") { caseArg };
        cmd.SetAction(p => io.Guard(() => throw new NotSupportedException("trace is not implemented yet.")));
        return cmd;
    }
}
