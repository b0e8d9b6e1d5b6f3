namespace Loop.Dashboard.Tests;

using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Loop.Testing;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

[Collection(DashboardCollection.Name)]
public sealed class TasksPageTests(DashboardFixture fixture)
{
    [Fact]
    public async Task A_task_is_created_through_the_form_then_disabled_enabled_and_deleted()
    {
        var channelName = "tasks-" + Guid.NewGuid().ToString("N")[..8];
        using var created = await fixture.Daemon.Http.PostAsJsonAsync("/api/channels", new { name = channelName });
        var channelId = (string)(await LoopDaemon.ReadObjectAsync(created, HttpStatusCode.Created))["id"]!;
        var taskName = "nightly summary " + channelName;
        const string badSchedule = "every tuesday";
        const string prompt = "[[reply summary]]";

        // What the API says about that schedule, to find the same words on the page.
        using var refused = await fixture.Daemon.Http.PostAsJsonAsync("/api/tasks",
            new { channel_id = channelId, name = taskName, type = "cron", schedule = badSchedule, prompt });
        var apiMessage = (string)(await LoopDaemon.ReadObjectAsync(refused, HttpStatusCode.BadRequest))["detail"]!;

        await using var session = await fixture.OpenAsync();
        await session.RunAsync(async page =>
        {
            Ui.AcceptDialogs(page);
            await Ui.GoToAsync(page, "tasks", "Tasks");
            await Ui.Button(page, "New task").ClickAsync();
            var form = page.GetByRole(AriaRole.Heading, new() { Name = "New task", Exact = true });
            await Expect(form).ToBeVisibleAsync();
            foreach (var label in new[] { "Channel", "Name", "Type", "Schedule", "Prompt", "Time zone", "Context" })
            {
                await Expect(Ui.Field(page, label)).ToBeVisibleAsync();
            }
            // The loop settings: shown for loop tasks at least.
            await Ui.Field(page, "Type").SelectOptionAsync("loop");
            await Expect(Ui.Field(page, "Max iterations")).ToBeVisibleAsync();
            await Expect(Ui.Field(page, "Completion promise")).ToBeVisibleAsync();

            await Ui.Field(page, "Channel").SelectOptionAsync(new SelectOptionValue { Label = channelName });
            await Ui.Field(page, "Name").FillAsync(taskName);
            await Ui.Field(page, "Type").SelectOptionAsync("cron");
            await Ui.Field(page, "Schedule").FillAsync(badSchedule);
            await Ui.Field(page, "Prompt").FillAsync(prompt);
            await Ui.Button(page, "Save task").ClickAsync();
            await Ui.ExpectFieldErrorAsync(Ui.Field(page, "Schedule"), apiMessage);
            Assert.DoesNotContain(await fixture.Daemon.GetArrayAsync("/api/tasks"), t => (string)t!["name"]! == taskName);

            await Ui.Field(page, "Schedule").FillAsync("*/5 * * * *");
            await Ui.Button(page, "Save task").ClickAsync();
            await Expect(form).ToBeHiddenAsync();
            var table = page.GetByRole(AriaRole.Table);
            foreach (var column in new[] { "Name", "Channel", "Type", "Schedule", "Next run", "State", "Actions" })
            {
                await Expect(table.GetByRole(AriaRole.Columnheader, new() { Name = column, Exact = true })).ToBeVisibleAsync();
            }
            var row = table.GetByRole(AriaRole.Row).Filter(new() { HasText = taskName });
            await Expect(row).ToHaveCountAsync(1);
            await Expect(row).ToContainTextAsync("*/5 * * * *");
            await Expect(row).ToContainTextAsync(channelName);
            var task = await TaskNamedAsync(taskName);
            Assert.Equal(channelId, (string)task!["channel_id"]!);
            Assert.Equal("cron", (string)task["type"]!);
            Assert.True((bool)task["enabled"]!);

            // The form once more, for the screenshot, then Cancel closes it.
            await Ui.Button(page, "New task").ClickAsync();
            await Expect(form).ToBeVisibleAsync();
            await Screenshots.SaveAsync(page, "tasks");
            await Ui.Button(page, "Cancel").ClickAsync();
            await Expect(form).ToBeHiddenAsync();

            await row.GetByRole(AriaRole.Button, new() { Name = "Disable", Exact = true }).ClickAsync();
            await Expect(row.GetByRole(AriaRole.Button, new() { Name = "Enable", Exact = true })).ToBeVisibleAsync();
            Assert.False((bool)(await TaskNamedAsync(taskName))!["enabled"]!);
            await row.GetByRole(AriaRole.Button, new() { Name = "Enable", Exact = true }).ClickAsync();
            await Expect(row.GetByRole(AriaRole.Button, new() { Name = "Disable", Exact = true })).ToBeVisibleAsync();
            Assert.True((bool)(await TaskNamedAsync(taskName))!["enabled"]!);

            await row.GetByRole(AriaRole.Button, new() { Name = "Delete", Exact = true }).ClickAsync();
            await Expect(row).ToHaveCountAsync(0);
            Assert.Null(await TaskNamedAsync(taskName));
        });
    }

    private async Task<JsonNode?> TaskNamedAsync(string name) =>
        (await fixture.Daemon.GetArrayAsync("/api/tasks")).SingleOrDefault(t => (string)t!["name"]! == name);
}
