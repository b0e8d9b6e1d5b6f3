namespace Loop.Cli;

using System.CommandLine;
using Loop.Client;

/// <summary><c>loop channels worktree remove &lt;channel-id&gt; [--force]</c>: removes the git worktree a fork
/// works in. API errors print one line <c>loop: &lt;detail&gt;</c> and exit 1.</summary>
public static class ChannelsCommand
{
    public static Command Create()
    {
        var apiUrl = McpCommand.ApiUrlOption();
        apiUrl.Recursive = true;
        var token = McpCommand.TokenOption();
        token.Recursive = true;
        var json = new Option<bool>("--json") { Description = "Print the API's JSON instead of text", Recursive = true };

        var id = new Argument<string>("channel-id") { Description = "The fork's channel id, e.g. ch_01JD..." };
        var force = new Option<bool>("--force") { Description = "Remove it even with changes not committed (they are lost)" };
        var remove = new Command("remove", "Remove the git worktree a fork works in (its branch stays; its next run makes it again)") { id, force };
        remove.Aliases.Add("rm");
        remove.SetAction(async (parse, ct) =>
        {
            using var api = new LoopApiClient(LoopApiClient.ResolveApiUrl(parse.GetValue(apiUrl)), parse.GetValue(token));
            var channelId = parse.GetValue(id)!;
            try
            {
                var channel = await api.RemoveWorktreeAsync(channelId, parse.GetValue(force), ct);
                Console.WriteLine(parse.GetValue(json) ? LoopText.Json(channel) : $"removed the git worktree of {channelId}");
                return 0;
            }
            catch (LoopApiException error)
            {
                Console.Error.WriteLine($"loop: {error.Message}");
                return 1;
            }
        });
        var worktree = new Command("worktree", "The git worktree a fork works in") { remove };
        return new Command("channels", "Channels: the git worktrees of forks") { apiUrl, token, json, worktree };
    }
}
