namespace Loop.Cli;

using System.CommandLine;
using System.Globalization;
using Loop.Client;

/// <summary><c>loop cluster status</c>: the nodes serving Loop, their state and load.</summary>
public static class ClusterCommand
{
    public static Command Create()
    {
        var common = ApiOptions.Create();
        var status = new Command("status", "List the nodes with their state and load");
        status.SetAction((parse, ct) => common.RunAsync(parse, async (api, json) =>
        {
            var cluster = await api.GetClusterAsync(ct);
            if (json)
            {
                Console.WriteLine(LoopText.Json(cluster));
                return;
            }
            Console.Write(Table(cluster.Nodes, DateTimeOffset.UtcNow));
        }));
        var cluster = common.Group("cluster", "The nodes that serve this Loop");
        cluster.Subcommands.Add(status);
        return cluster;
    }

    /// <summary>One line per node, the one answering marked with *.</summary>
    public static string Table(IReadOnlyList<LoopNode> nodes, DateTimeOffset now)
    {
        string[] header = ["NODE", "STATUS", "ADDRESS", "RUNNING", "GRAINS", "CPU", "UP", "LAST SEEN", "HOLDS"];
        var rows = nodes.Select(n => new[]
        {
            n.ThisNode ? n.Name + " *" : n.Name,
            n.Status,
            n.Address,
            n.RunningRuns.ToString(CultureInfo.InvariantCulture),
            n.Activations?.ToString(CultureInfo.InvariantCulture) ?? "-",
            n.CpuPercent is { } cpu ? cpu.ToString("0.0", CultureInfo.InvariantCulture) + "%" : "-",
            n.Status == "dead" ? "-" : Ago(now - n.StartedAt),
            Ago(now - n.LastSeenAt) + " ago",
            n.Holds is [_, ..] holds ? string.Join(",", holds) : "-",
        }).Prepend(header).ToList();
        var widths = header.Select((_, i) => rows.Max(r => r[i].Length)).ToArray();
        return string.Concat(rows.Select(r => string.Join("  ", r.Select((cell, i) => cell.PadRight(widths[i]))).TrimEnd() + "\n"));
    }

    private static string Ago(TimeSpan span) => span switch
    {
        { TotalSeconds: < 60 } => $"{Math.Max(0, (int)span.TotalSeconds)}s",
        { TotalMinutes: < 60 } => $"{(int)span.TotalMinutes}m",
        { TotalHours: < 48 } => $"{(int)span.TotalHours}h",
        _ => $"{(int)span.TotalDays}d",
    };
}
