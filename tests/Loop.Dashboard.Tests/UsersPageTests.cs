namespace Loop.Dashboard.Tests;

using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

/// <summary>The Users page, and what a viewer sees: every page, without what changes things.</summary>
[Collection(DashboardCollection.Name)]
public sealed class UsersPageTests(DashboardFixture fixture)
{
    [Fact]
    public async Task The_admin_adds_a_viewer_who_logs_in_and_sees_the_pages_without_their_change_buttons_and_the_role_in_the_header()
    {
        var name = "vera-" + Guid.NewGuid().ToString("N")[..8];
        var channelId = (string)(await fixture.Daemon.CreateChannelAsync())["id"]!;
        var taskName = "seen by " + name;
        await fixture.Daemon.CreateTaskAsync(new { channel_id = channelId, name = taskName, type = "interval", schedule = "1h", prompt = "hourly", enabled = false });

        await using (var admin = await fixture.OpenAsync())
        {
            await admin.RunAsync(async page =>
            {
                await Ui.GoToAsync(page, "users", "Users");
                await Expect(page.GetByTestId("role")).ToHaveTextAsync("admin");
                await Ui.Field(page, "Username").FillAsync(name);
                await Ui.Field(page, "Password").FillAsync(DashboardFixture.Password);
                await Ui.Field(page, "Role").SelectOptionAsync("viewer");
                await Ui.Button(page, "Add user").ClickAsync();
                var row = page.GetByRole(AriaRole.Row).Filter(new() { HasText = name });
                await Expect(row.GetByRole(AriaRole.Cell).Nth(1)).ToHaveTextAsync("viewer");
                await Expect(row.GetByRole(AriaRole.Button, new() { Name = "Remove", Exact = true })).ToBeVisibleAsync();
                await Screenshots.SaveAsync(page, "users");
            });
        }

        await using var viewer = await fixture.OpenAsync(loggedIn: false);
        await viewer.RunAsync(async page =>
        {
            await page.GotoAsync("/#/tasks");
            await Ui.Field(page, "Username").FillAsync(name);
            await Ui.Field(page, "Password").FillAsync(DashboardFixture.Password);
            await Ui.Button(page, "Log in").ClickAsync();

            await Expect(Ui.Heading(page, "Tasks")).ToBeVisibleAsync();
            await Expect(page.GetByTestId("user")).ToContainTextAsync(name);
            await Expect(page.GetByTestId("role")).ToHaveTextAsync("viewer");
            // The task is listed, with what only reads it; nothing that would change it is offered.
            var row = page.GetByRole(AriaRole.Row).Filter(new() { HasText = taskName });
            await Expect(row.GetByRole(AriaRole.Button, new() { Name = "Runs", Exact = true })).ToBeVisibleAsync();
            foreach (var button in new[] { "Edit", "Enable", "Delete" })
            {
                await Expect(row.GetByRole(AriaRole.Button, new() { Name = button, Exact = true })).ToHaveCountAsync(0);
            }
            await Expect(Ui.Button(page, "New task")).ToHaveCountAsync(0);
            await Expect(Ui.Button(page, "From template")).ToHaveCountAsync(0);
            await Screenshots.SaveAsync(page, "tasks-viewer");

            // On the Users page a viewer may change their own password, and nothing else.
            await Ui.GoToAsync(page, "users", "Users");
            var own = page.GetByRole(AriaRole.Row).Filter(new() { HasText = name });
            await Expect(own.GetByRole(AriaRole.Button, new() { Name = "Change password", Exact = true })).ToBeVisibleAsync();
            await Expect(Ui.Button(page, "Add user")).ToHaveCountAsync(0);
            await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Remove", Exact = true })).ToHaveCountAsync(0);
        });
    }
}
