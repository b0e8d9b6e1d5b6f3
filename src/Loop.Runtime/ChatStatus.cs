namespace Loop.Runtime;

using System.Text;
using Loop.Domain.Tasks;

/// <summary>The answer to a chat's status command (Discord's /loop status, Telegram's /status), in Markdown.</summary>
public static class ChatStatus
{
    /// <param name="here">How the platform calls the place asked from: "This channel", "This chat".</param>
    public static string Text(HealthReport report, IReadOnlyList<ScheduledTask> tasksHere, string here)
    {
        var text = new StringBuilder();
        text.Append($"**Loop {report.Version}** on {report.Node}: {report.Status}\n");
        text.Append($"Runner: {report.Runner} · runs: {report.Queue.Running}/{report.Queue.Capacity} running, {report.Queue.Waiting} waiting · active channels: {report.ActiveChannels}\n");
        text.Append($"Uptime: {TimeSpan.FromSeconds((long)report.UptimeSeconds)}\n");
        text.Append($"{here}: {tasksHere.Count} task(s), {tasksHere.Count(t => t.Enabled)} enabled\n");
        foreach (var chat in report.Chats)
        {
            text.Append($"{chat.Platform}: {chat.Status}\n");
        }
        foreach (var warning in report.Warnings)
        {
            text.Append($"⚠️ {warning}\n");
        }
        return text.ToString().TrimEnd();
    }
}
