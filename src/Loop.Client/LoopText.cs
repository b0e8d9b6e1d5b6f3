namespace Loop.Client;

using System.Globalization;
using System.Text.Json;

/// <summary>Short, readable renderings of API objects, shared by <c>loop tasks</c> and the MCP tools.</summary>
public static class LoopText
{
    /// <summary>"cron "*/5 * * * *" (Europe/Berlin)", "interval 5m", "loop (max 10 iterations)".</summary>
    public static string Schedule(LoopTask task) => task.Type switch
    {
        "loop" => $"loop (max {task.MaxIterations} iterations, until <promise>{task.CompletionPromise}</promise>)",
        "cron" => $"cron \"{task.Schedule}\" ({task.Timezone ?? "UTC"})",
        _ => $"{task.Type} {task.Schedule}",
    };

    /// <summary>One line: id, name, schedule, state, next run, prompt excerpt.</summary>
    public static string Line(LoopTask task)
    {
        var state = task.Done ? "done" : task.Enabled ? "enabled" : "disabled";
        var when = task.Type == "loop"
            ? $"loop state {task.LoopState}, iteration {task.Iteration}"
            : task.NextRunAt is { } next ? $"next run {Instant(next)}" : "no next run";
        return $"{task.Id} \"{task.Name}\": {Schedule(task)}, {state}, {when}; prompt: {PromptOf(task, 100)}";
    }

    /// <summary>Several lines, one fact each.</summary>
    public static string Details(LoopTask task)
    {
        var lines = new List<string>
        {
            $"id:             {task.Id}",
            $"name:           {task.Name}",
            $"channel:        {task.ChannelId}",
            $"schedule:       {Schedule(task)}",
            $"enabled:        {(task.Done ? "done (a once task that has run)" : task.Enabled ? "yes" : "no")}",
            $"context:        {task.Context}",
            $"misfire:        {task.Misfire}",
            $"next run:       {(task.NextRunAt is { } next ? Instant(next) : "-")}",
            $"last run:       {(task.LastRunAt is { } last ? Instant(last) : "-")}",
        };
        if (task.Type == "loop")
        {
            lines.Add($"loop state:     {task.LoopState}, iteration {task.Iteration} of {task.MaxIterations}" + (task.StopReason is { } why ? $" ({why})" : ""));
        }
        if (task.Template is { } template)
        {
            lines.Add($"template:       {template}");
        }
        lines.Add(task.PromptFile is { } file ? $"prompt file:    {file} (read at each run)" : $"prompt:         {task.Prompt}");
        return string.Join('\n', lines);
    }

    public static string RunLine(LoopRun run)
    {
        var elapsed = run.ElapsedMs is { } ms ? $", {ms / 1000.0:0.0} s" : "";
        var cost = run.Usage is { CostUsd: > 0 } usage ? $", ${usage.CostUsd.ToString("0.0000", CultureInfo.InvariantCulture)}" : "";
        var outcome = run.Error is { Length: > 0 } error ? $"error: {Excerpt(error, 120)}"
            : run.Reply is { Length: > 0 } reply ? $"reply: {Excerpt(reply, 120)}"
            : "";
        return $"{run.Id} {run.Status} at {Instant(run.CreatedAt)}{elapsed}{cost}" + (outcome.Length > 0 ? $"; {outcome}" : "");
    }

    public static string Json(LoopTask task) => JsonSerializer.Serialize(task, LoopClientJson.Default.LoopTask);

    public static string Json(List<LoopTask> tasks) => JsonSerializer.Serialize(tasks, LoopClientJson.Default.ListLoopTask);

    public static string Json(List<LoopRun> runs) => JsonSerializer.Serialize(runs, LoopClientJson.Default.ListLoopRun);

    public static string Json(LoopCluster cluster) => JsonSerializer.Serialize(cluster, LoopClientJson.Default.LoopCluster);

    public static string Json(LoopChannel channel) => JsonSerializer.Serialize(channel, LoopClientJson.Default.LoopChannel);

    public static string Instant(DateTimeOffset at) => at.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    public static string Excerpt(string text, int max)
    {
        var flat = text.ReplaceLineEndings(" ").Trim();
        return flat.Length <= max ? flat : flat[..(max - 1)] + "…";
    }

    /// <summary>The prompt cut to <paramref name="max"/>, or "file PROMPT.md" for a task that reads one.</summary>
    public static string PromptOf(LoopTask task, int max) =>
        task.PromptFile is { } file ? $"file {file}" : Excerpt(task.Prompt, max);
}
