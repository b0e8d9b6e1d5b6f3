namespace Loop.Cli;

using System.CommandLine;
using Loop.Client;

/// <summary><c>loop channels worktree remove &lt;channel-id&gt; [--force]</c>: removes the git worktree a fork
/// works in. API errors print one line <c>loop: &lt;detail&gt;</c> and exit 1.</summary>
public static class ChannelsCommand
{
    public static Command Create()
    {
        var common = ApiOptions.Create();

        var id = new Argument<string>("channel-id") { Description = "The fork's channel id, e.g. ch_01JD..." };
        var force = new Option<bool>("--force") { Description = "Remove it even with changes not committed (they are lost)" };
        var remove = new Command("remove", "Remove the git worktree a fork works in (its branch stays; its next run makes it again)") { id, force };
        remove.Aliases.Add("rm");
        remove.SetAction((parse, ct) => common.RunAsync(parse, async (api, json) =>
        {
            var channelId = parse.GetValue(id)!;
            var channel = await api.RemoveWorktreeAsync(channelId, parse.GetValue(force), ct);
            Console.WriteLine(json ? LoopText.Json(channel) : $"removed the git worktree of {channelId}");
        }));
        var channels = common.Group("channels", "Channels: the git worktrees of forks");
        channels.Subcommands.Add(new Command("worktree", "The git worktree a fork works in") { remove });
        return channels;
    }
}
