namespace Loop.Integration.Tests;

using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Loop.Testing;

/// <summary>Forked channels on a real daemon: the fork's first run resumes the parent's session with
/// --fork-session (in the claude double, a new session holding the parent's history), and the parent's
/// conversation goes on as if the fork never happened.</summary>
public sealed partial class ForkTests
{
    [Fact]
    public async Task A_fork_continues_the_parents_conversation_in_a_session_of_its_own_and_the_parent_is_untouched()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var project = AgentUser.CreateDir();
        var parent = (string)(await loop.CreateChannelAsync(project))["id"]!;
        await loop.PostMessageAsync(parent, "[[reply first]]");
        await loop.WaitForFinishedRunsAsync(parent, 1);
        await loop.PostMessageAsync(parent, "[[session]]");
        var (parentSession, parentTurns) = Session((await loop.WaitForFinishedRunsAsync(parent, 2))[1]);
        Assert.Equal(1, parentTurns);

        var fork = await ForkAsync(loop, parent, new { name = "explore" });
        Assert.Equal(("explore", parent), ((string)fork["name"]!, (string)fork["parent_id"]!));
        Assert.Null(fork["session_id"]);
        Assert.Null(fork["dir_path"]);
        var forkId = (string)fork["id"]!;

        await loop.PostMessageAsync(forkId, "[[session]] [[pwd]]");
        var first = (await loop.WaitForFinishedRunsAsync(forkId, 1))[0];
        var (forkSession, forkTurns) = Session(first);
        Assert.NotEqual(parentSession, forkSession);
        Assert.Equal(2, forkTurns); // the parent's two prompts came with it
        Assert.Contains($"pwd: {project}", (string)first["reply"]!); // and it works in the parent's project
        Assert.Equal(forkSession, (string)(await loop.GetObjectAsync($"/api/channels/{forkId}"))["session_id"]!);
        await loop.PostMessageAsync(forkId, "[[session]]");
        Assert.Equal((forkSession, 3), Session((await loop.WaitForFinishedRunsAsync(forkId, 2))[1]));

        // The parent's session knows nothing of the fork's prompts.
        await loop.PostMessageAsync(parent, "[[session]]");
        Assert.Equal((parentSession, 2), Session((await loop.WaitForFinishedRunsAsync(parent, 3))[2]));
        Assert.Equal(parentSession, (string)(await loop.GetObjectAsync($"/api/channels/{parent}"))["session_id"]!);
    }

    [Fact]
    public async Task A_fork_of_a_channel_without_a_project_works_in_its_own_folder_and_still_has_the_conversation()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var parent = await loop.CreateChannelAsync();
        var parentId = (string)parent["id"]!;
        await loop.PostMessageAsync(parentId, "[[session]]");
        var (parentSession, _) = Session((await loop.WaitForFinishedRunsAsync(parentId, 1))[0]);

        var fork = await ForkAsync(loop, parentId, null);
        Assert.Equal($"{(string)parent["name"]!}-fork", (string)fork["name"]!);
        var forkId = (string)fork["id"]!;
        await loop.PostMessageAsync(forkId, "[[session]] [[pwd]]");
        var run = (await loop.WaitForFinishedRunsAsync(forkId, 1))[0];
        var (forkSession, turns) = Session(run);
        Assert.NotEqual(parentSession, forkSession);
        Assert.Equal(1, turns);
        Assert.Contains($"pwd: {Path.Combine(loop.Home, forkId, "work")}", (string)run["reply"]!);
    }

    [Fact]
    public async Task Forking_needs_a_channel_that_exists_a_good_name_and_a_user()
    {
        await using var loop = await LoopDaemon.StartAsync();
        var parent = (string)(await loop.CreateChannelAsync())["id"]!;
        using (var missing = await loop.Http.PostAsync("/api/channels/ch_nope/fork", null))
        {
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        }
        using (var blank = await loop.Http.PostAsJsonAsync($"/api/channels/{parent}/fork", new { name = " " }))
        {
            Assert.Equal(HttpStatusCode.BadRequest, blank.StatusCode);
            Assert.Contains("name must be 1 to 100 characters", await blank.Content.ReadAsStringAsync());
        }
        var token = (string)(await loop.GetObjectAsync($"/api/channels/{parent}/token"))["token"]!;
        using var agent = new HttpClient { BaseAddress = new Uri(loop.ApiUrl) };
        agent.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        using var refused = await agent.PostAsync($"/api/channels/{parent}/fork", null);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
    }

    private static async Task<JsonObject> ForkAsync(LoopDaemon loop, string parentId, object? body)
    {
        using var response = body is null
            ? await loop.Http.PostAsync($"/api/channels/{parentId}/fork", null)
            : await loop.Http.PostAsJsonAsync($"/api/channels/{parentId}/fork", body);
        return await LoopDaemon.ReadObjectAsync(response, HttpStatusCode.Created);
    }

    /// <summary>The double's answer to [[session]]: the session's id and the prompts it had before this one.</summary>
    private static (string Id, int PriorTurns) Session(JsonObject run)
    {
        var match = SessionLine().Match((string)run["reply"]!);
        Assert.True(match.Success, $"no session line in: {run}");
        return (match.Groups["id"].Value, int.Parse(match.Groups["turns"].Value, System.Globalization.CultureInfo.InvariantCulture));
    }

    [GeneratedRegex(@"session (?<id>[0-9a-f-]{36}) prior_turns=(?<turns>\d+)")]
    private static partial Regex SessionLine();
}
