namespace Loop.Domain.Channels;

using Loop.Domain.Runs;

/// <summary>The line a channel shows for a finished run: the agent's answer, or a short human
/// explanation when there is none.</summary>
public static class RunReplies
{
    public static NewMessage For(Run run)
    {
        if (run.Status == RunStatus.Succeeded && !string.IsNullOrWhiteSpace(run.Reply))
        {
            return new NewMessage(run.ChannelId, MessageRole.Agent, "agent", run.Reply, run.Id);
        }
        var text = run.Status switch
        {
            RunStatus.Succeeded => "The agent finished without saying anything.",
            RunStatus.TimedOut => $"The agent ran out of time and was stopped. {run.Error}".TrimEnd(),
            RunStatus.Cancelled => "The run was cancelled.",
            _ => $"The agent run failed: {run.Error ?? "no reason given"}",
        };
        return new NewMessage(run.ChannelId, MessageRole.System, "loop", text, run.Id);
    }
}
