//! Whether a module has call-frame information for an address — how a caller's frame was
//! found: from CFI, or (where there is none) by following the frame pointer, as the
//! unwinder falls back to. The lookup is gimli's, through `.eh_frame_hdr`'s table, or over
//! `.debug_frame`.

use gimli::{BaseAddresses, DebugFrame, EhFrame, EhFrameHdr, LittleEndian, UnwindSection};

use super::modules::Image;

/// Whether `image` describes how to unwind from stated address `svma`.
pub(crate) fn covers(image: &Image, svma: u64) -> bool {
    let u = &image.unwind;
    if let (Some(hdr), Some(hdr_at), Some(eh), Some(eh_at)) = (
        u.eh_frame_hdr.as_deref(),
        u.eh_frame_hdr_svma.as_ref(),
        u.eh_frame.as_deref(),
        u.eh_frame_svma.as_ref(),
    ) {
        let bases = BaseAddresses::default()
            .set_eh_frame_hdr(hdr_at.start)
            .set_eh_frame(eh_at.start)
            .set_text(u.text_svma.as_ref().map_or(0, |t| t.start));
        let eh_frame = EhFrame::new(eh, LittleEndian);
        let found = EhFrameHdr::new(hdr, LittleEndian)
            .parse(&bases, 8)
            .ok()
            .and_then(|parsed| {
                let table = parsed.table()?;
                table
                    .fde_for_address(&eh_frame, &bases, svma, EhFrame::cie_from_offset)
                    .ok()
            });
        if found.is_some() {
            return true;
        }
    }
    if let Some(df) = u.debug_frame.as_deref() {
        let debug_frame = DebugFrame::new(df, LittleEndian);
        return debug_frame
            .fde_for_address(&BaseAddresses::default(), svma, DebugFrame::cie_from_offset)
            .is_ok();
    }
    false
}
