namespace Loop.Dashboard.Tests;

using System.Net;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using Loop.Testing;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

[Collection(DashboardCollection.Name)]
public sealed class ChannelsPageTests(DashboardFixture fixture)
{
    [Fact]
    public async Task The_table_lists_channels_filters_them_and_opens_one_in_chat()
    {
        var name = "channels-" + Guid.NewGuid().ToString("N")[..8];
        // Outside the Loop home: no project may lie inside it.
        var dir = Directory.CreateTempSubdirectory(name + "-").FullName;
        using var created = await fixture.Daemon.Http.PostAsJsonAsync("/api/channels", new { name, dir_path = dir });
        var channelId = (string)(await LoopDaemon.ReadObjectAsync(created, HttpStatusCode.Created))["id"]!;

        await using var session = await fixture.OpenAsync();
        await session.RunAsync(async page =>
        {
            await Ui.GoToAsync(page, "channels", "Channels");
            var table = page.GetByRole(AriaRole.Table);
            foreach (var column in new[] { "Name", "Directory", "Session", "Queue", "Last run", "Actions" })
            {
                await Expect(table.GetByRole(AriaRole.Columnheader, new() { Name = column, Exact = true })).ToBeVisibleAsync();
            }
            var row = table.GetByRole(AriaRole.Row).Filter(new() { HasText = name });
            await Expect(row).ToHaveCountAsync(1);
            await Expect(row).ToContainTextAsync(dir);
            await Expect(row.GetByRole(AriaRole.Button, new() { Name = "Reset session", Exact = true })).ToBeVisibleAsync();
            await Screenshots.SaveAsync(page, "channels");

            // Filtering by name leaves the header and this channel's row.
            await Ui.Field(page, "Filter").FillAsync(name);
            await Expect(table.GetByRole(AriaRole.Row)).ToHaveCountAsync(2);
            await Ui.Field(page, "Filter").FillAsync("no channel is called this");
            await Expect(row).ToHaveCountAsync(0);
            await Ui.Field(page, "Filter").FillAsync(name);

            await row.GetByRole(AriaRole.Link, new() { Name = "Open chat", Exact = true }).ClickAsync();
            await Expect(page).ToHaveURLAsync(new Regex($"#/chat/{channelId}$"));
            await Expect(Ui.Heading(page, "Chat")).ToBeVisibleAsync();
            await Expect(page.GetByRole(AriaRole.Combobox, new() { Name = "Channel", Exact = true })).ToHaveValueAsync(channelId);
        });
    }

    [Fact]
    public async Task A_fork_with_a_worktree_shows_its_path_and_branch_and_a_button_removes_it()
    {
        var project = TestRepository.Create();
        AgentUser.GiveToAgents(project);
        using var created = await fixture.Daemon.Http.PostAsJsonAsync("/api/channels", new { dir_path = project });
        var parentId = (string)(await LoopDaemon.ReadObjectAsync(created, HttpStatusCode.Created))["id"]!;
        var name = "worktree-" + Guid.NewGuid().ToString("N")[..8];
        using var forked = await fixture.Daemon.Http.PostAsJsonAsync($"/api/channels/{parentId}/fork", new { name, worktree = true });
        var forkId = (string)(await LoopDaemon.ReadObjectAsync(forked, HttpStatusCode.Created))["id"]!;
        await fixture.Daemon.PostMessageAsync(forkId, "[[pwd]]");
        await fixture.Daemon.WaitForFinishedRunsAsync(forkId, 1);
        var worktree = Path.Combine(project, ".claude", "worktrees", forkId);

        await using var session = await fixture.OpenAsync();
        await session.RunAsync(async page =>
        {
            Ui.AcceptDialogs(page);
            await Ui.GoToAsync(page, "channels", "Channels");
            await Ui.Field(page, "Filter").FillAsync(name);
            var row = page.GetByRole(AriaRole.Table).GetByRole(AriaRole.Row).Filter(new() { HasText = name });
            await Expect(row.GetByTestId("channel-worktree")).ToContainTextAsync(worktree);
            await Expect(row.GetByTestId("channel-worktree")).ToContainTextAsync($"branch loop/{forkId}");

            await row.GetByRole(AriaRole.Button, new() { Name = "Remove worktree", Exact = true }).ClickAsync();
            await Expect(row.GetByTestId("channel-worktree")).ToHaveTextAsync("git worktree: made on its first run");
            await Expect(row.GetByRole(AriaRole.Button, new() { Name = "Remove worktree", Exact = true })).ToHaveCountAsync(0);
        });
        Assert.False(Directory.Exists(worktree));
    }
}
